#include "solver/search/bit_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/config/config_enums.h"
#include "solver/search/search_enums.h"

namespace ompq::solver {
namespace {

proto::LayerBits layer_bits(const SearchUnit& unit, int bits) {
  proto::LayerBits l;
  l.set_name(unit.name);
  l.set_bits(bits);
  l.set_params(unit.params);
  for (const std::string& layer : unit.layers) l.add_layers(layer);
  return l;
}

// Checks one config entry against the unit the model has at that place, and that its bits lie
// in [min_bits, max_bits].
absl::Status check_entry(const proto::LayerBits& entry, const SearchUnit& unit, int min_bits,
                         int max_bits, const std::string& where) {
  const std::vector<std::string> layers(entry.layers().begin(), entry.layers().end());
  if (entry.name() != unit.name || (!layers.empty() && layers != unit.layers)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " is \"", entry.name(), "\" (layers ", absl::StrJoin(layers, ", "),
                     ") but the model has \"", unit.name, "\" (layers ",
                     absl::StrJoin(unit.layers, ", "), ") there"));
  }
  if (entry.bits() < min_bits || entry.bits() > max_bits) {
    return absl::InvalidArgumentError(absl::StrCat(where, " \"", entry.name(), "\" has ",
                                                   entry.bits(), " bits (expected ", min_bits, "..",
                                                   max_bits, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

proto::BitConfig make_bit_config(const SearchOptions& o, const SearchResult& r) {
  proto::BitConfig c;
  c.set_model(o.model_name);
  c.set_quant(to_proto(o.mode));
  c.set_budget_mb(o.allocation.budget_mib);
  c.set_solver(to_proto(o.allocation.solver));
  if (o.allocation.solver != SolverKind::kIlp) c.set_rounding(to_proto(o.allocation.rounding));
  // The projection solver reads no importance, so beta plays no part in its result.
  if (o.allocation.solver != SolverKind::kProjection) c.set_beta(o.beta);
  c.set_act_bits(o.allocation.act_bits);
  c.set_bops_budget_g(o.allocation.bops_budget_g);
  c.set_reference_bops(o.allocation.reference_bops);
  for (size_t i = 0; i < r.space.units.size(); ++i) {
    *c.add_layer() = layer_bits(r.space.units[i], r.allocation.bits[i]);
  }
  for (const SearchUnit& unit : r.space.fixed) {
    *c.add_fixed() = layer_bits(unit, SearchSpace::kFixedBits);
  }
  c.set_size_mib(r.allocation.size_mib);
  c.set_bops_g(r.allocation.bops_g);
  return c;
}

absl::StatusOr<LayerBitsPlan> plan_from_bit_config(const proto::BitConfig& config,
                                                   const nn::Model& model,
                                                   const std::string& source) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
  };
  LayerBitsPlan plan;
  if (config.quant() != proto::QUANT_QAT && config.quant() != proto::QUANT_PTQ) {
    return bad(absl::StrCat("quant ", enum_name(config.quant()), " (expected qat or ptq)"));
  }
  plan.mode = quant_mode(config.quant());
  const Shape input = model.input_shape();
  absl::StatusOr<SearchSpace> space = build_search_space(model, plan.mode, input[1], input[2]);
  if (!space.ok()) return bad(std::string(space.status().message()));
  if (config.layer_size() != static_cast<int>(space->units.size()) ||
      config.fixed_size() != static_cast<int>(space->fixed.size())) {
    return bad(absl::StrCat(config.layer_size(), " layer and ", config.fixed_size(),
                            " fixed entries, but the model has ", space->units.size(),
                            " searched and ", space->fixed.size(), " fixed units in ",
                            quant_mode_name(plan.mode), " mode"));
  }
  for (int i = 0; i < config.layer_size(); ++i) {
    const proto::LayerBits& entry = config.layer(i);
    absl::Status status = check_entry(entry, space->units[i], space->min_bits, space->max_bits,
                                      absl::StrCat("layer ", i));
    if (!status.ok()) return bad(std::string(status.message()));
    for (const std::string& name : space->units[i].layers) plan.weight_bits[name] = entry.bits();
    plan.unit_bits.push_back(entry.bits());
  }
  for (int i = 0; i < config.fixed_size(); ++i) {
    absl::Status status = check_entry(config.fixed(i), space->fixed[i], SearchSpace::kFixedBits,
                                      SearchSpace::kFixedBits, absl::StrCat("fixed ", i));
    if (!status.ok()) return bad(std::string(status.message()));
    for (const std::string& name : space->fixed[i].layers) {
      plan.weight_bits[name] = SearchSpace::kFixedBits;
      plan.edge_layers.insert(name);
    }
  }
  plan.space = std::move(*space);
  return plan;
}

}  // namespace ompq::solver
