// The bit config (proto::BitConfig, bits.pbtxt): what a search found, as ompq_search --bits_out
// and ompq_train write it, and the per-layer weight bits that quantization reads back from it.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "layers/models/model.h"
#include "layers/quant/quantize_model.h"
#include "solver/search/search.h"

namespace ompq::solver {

// The result of search() with the options that produced it: model, quant, budget, solver,
// rounding (lp and projection), beta (not projection), act_bits, BOPs settings, one `layer` per
// searched unit in execution order, the fixed units at 8 bits, size and BOPs. The model variant
// and the search inputs (num_classes, weights, data, ...) are the caller's to fill in.
proto::BitConfig make_bit_config(const SearchOptions& options, const SearchResult& result);

// Weight bits for quantize_model, read from a bit config and checked against `model`.
struct LayerBitsPlan {
  QuantMode mode = QuantMode::kQat;
  std::map<std::string, int> weight_bits;  // every conv/linear of every unit, fixed ones included
  std::set<std::string> edge_layers;       // the fixed units' layers (QAT: stem and classifier)
  SearchSpace space;                       // the model's, in the config's mode
  std::vector<int> unit_bits;              // one per space.units entry
};

// The config's units must be exactly the search space of `model` in the config's quant mode
// (same names, layers and order) with bits in that mode's range (fixed units at 8): anything
// else is an InvalidArgument error naming `source` (the file) and the first offending entry.
absl::StatusOr<LayerBitsPlan> plan_from_bit_config(const proto::BitConfig& config,
                                                   const nn::Model& model,
                                                   const std::string& source);

}  // namespace ompq::solver
