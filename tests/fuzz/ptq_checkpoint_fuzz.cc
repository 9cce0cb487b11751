// load_ptq_checkpoint (solver/quantize/ptq_checkpoint.h) on any bytes: the safetensors container,
// the format tag, the reconstruction's identity, phase and units done, the per-unit result tensors,
// the rounding variables and the model state. Everything is checked before the model or the
// state changes, so a failed load must leave both as they were.
#include <cstdint>
#include <cstdlib>

#include "tests/fuzz/fuzz_files.h"
#include "tests/fuzz/ptq_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ompq::fuzz::PtqFixture fixture;
  const std::string path = ompq::fuzz::write_fuzz_file("ptq_checkpoint.safetensors", data, size);
  const auto model_before = ompq::fuzz::state_bytes(fixture.model->state_dict());
  ompq::solver::PtqCheckpoint state = fixture.empty_state();
  const absl::Status status = ompq::solver::load_ptq_checkpoint(
      path, *fixture.model, fixture.layers, fixture.identity, &state);
  if (status.ok()) {
    const int64_t num_units = static_cast<int64_t>(fixture.units.size());
    if ((state.phase != 1 && state.phase != 2) || state.units_done < 0 ||
        state.units_done > num_units ||
        static_cast<int64_t>(state.result.units.size()) != num_units) {
      std::abort();
    }
    return 0;
  }
  if (ompq::fuzz::state_bytes(fixture.model->state_dict()) != model_before) std::abort();
  if (state.phase != 1 || state.units_done != 0) std::abort();
  return 0;
}
