// A BitConfig in protobuf text format (bits.pbtxt, ompq_search --bits_out) on any bytes:
// read_text_proto (solver/config/proto_io.h, with its check of enum values) and
// plan_from_bit_config (solver/search/bit_config.h) against the tiny ResNet's search space in the
// config's mode. A plan that is accepted must give every conv and linear of the model bits in its
// mode's range.
#include <cstdint>
#include <cstdlib>

#include "core/proto/ompq.pb.h"
#include "solver/config/proto_io.h"
#include "solver/search/bit_config.h"
#include "tests/fuzz/fuzz_files.h"
#include "tests/fuzz/tiny_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<ompq::nn::ResNet> model = ompq::fuzz::tiny_resnet();
  const std::string path = ompq::fuzz::write_fuzz_file("bits.pbtxt", data, size);
  ompq::proto::BitConfig bits;
  if (!ompq::solver::read_text_proto(path, &bits).ok()) return 0;
  absl::StatusOr<ompq::solver::LayerBitsPlan> plan =
      ompq::solver::plan_from_bit_config(bits, *model, path);
  if (!plan.ok()) return 0;
  if (plan->weight_bits.size() != model->quantizable_layers().size()) std::abort();
  for (const auto& [layer, layer_bits] : plan->weight_bits) {
    const bool fixed = plan->edge_layers.count(layer) > 0;
    const int low = fixed ? ompq::solver::SearchSpace::kFixedBits : plan->space.min_bits;
    const int high = fixed ? ompq::solver::SearchSpace::kFixedBits : plan->space.max_bits;
    if (layer_bits < low || layer_bits > high) std::abort();
  }
  return 0;
}
