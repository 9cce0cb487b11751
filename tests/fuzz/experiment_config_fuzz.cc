// An ExperimentConfig in protobuf text format (ompq_train --config, config.pbtxt) on any bytes:
// read_text_proto (solver/config/proto_io.h, with its check of enum values) and
// validate_experiment_config (solver/pipeline/experiment.h). A config that reads must print and
// read back to the same text, as config.pbtxt does when a run is resumed.
#include <cstdint>
#include <cstdlib>

#include "core/proto/ompq.pb.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ompq::fuzz::write_fuzz_file("config.pbtxt", data, size);
  ompq::proto::ExperimentConfig config;
  if (!ompq::solver::read_text_proto(path, &config).ok()) return 0;
  (void)ompq::solver::validate_experiment_config(config);

  const std::string text = ompq::solver::to_text_format(config);
  const std::string reprinted_path = ompq::fuzz::write_fuzz_file(
      "reprinted.pbtxt", reinterpret_cast<const uint8_t*>(text.data()), text.size());
  ompq::proto::ExperimentConfig reread;
  if (!ompq::solver::read_text_proto(reprinted_path, &reread).ok()) std::abort();
  if (ompq::solver::to_text_format(reread) != text) std::abort();
  return 0;
}
