// load_checkpoint (solver/train/checkpoint.h) on any bytes: the safetensors container, the format
// tag, the numeric metadata (epochs, steps, world size, batch size, generator state) and the model
// and optimizer state checked against a model and an SGD-with-momentum optimizer. A failed load
// must leave both as they were.
#include <cstdint>
#include <cstdlib>

#include "core/ops/optim_math.h"
#include "layers/optim.h"
#include "solver/train/checkpoint.h"
#include "tests/fuzz/fuzz_files.h"
#include "tests/fuzz/tiny_model.h"

namespace {

struct Target {
  std::shared_ptr<ompq::nn::ResNet> model = ompq::fuzz::tiny_resnet();
  ompq::nn::SGD optimizer{model->parameters(), [] {
                            ompq::SgdOptions options;
                            options.lr = 0.1;
                            options.momentum = 0.9;
                            return options;
                          }()};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target target;
  const std::string path = ompq::fuzz::write_fuzz_file("checkpoint.safetensors", data, size);
  const auto model_before = ompq::fuzz::state_bytes(target.model->state_dict());
  const auto optimizer_before = ompq::fuzz::state_bytes(target.optimizer.state_dict());
  absl::StatusOr<ompq::solver::CheckpointState> state =
      ompq::solver::load_checkpoint(path, *target.model, target.optimizer);
  if (state.ok()) {
    if (state->world_size < 1 || state->batch_size < 0) std::abort();
    return 0;
  }
  if (ompq::fuzz::state_bytes(target.model->state_dict()) != model_before ||
      ompq::fuzz::state_bytes(target.optimizer.state_dict()) != optimizer_before) {
    std::abort();
  }
  return 0;
}
