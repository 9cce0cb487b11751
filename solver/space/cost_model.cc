#include "solver/space/cost_model.h"

#include "core/error.h"

namespace ompq::solver {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

void check_bits(const SearchSpace& space, const std::vector<int>& bits, const char* what) {
  OMPQ_CHECK(bits.size() == space.units.size(), what, ": ", bits.size(), " bit-widths for ",
             space.units.size(), " searched units");
}

std::vector<int> uniform_bits(const SearchSpace& space, int bits) {
  return std::vector<int>(space.units.size(), bits);
}

}  // namespace

double model_size_mib(const SearchSpace& space, const std::vector<int>& bits) {
  check_bits(space, bits, "model_size_mib");
  double size = 0.0;
  for (size_t i = 0; i < bits.size(); ++i) size += bits[i] * (space.units[i].params / kMiB) / 8;
  for (const SearchUnit& unit : space.fixed) size += unit.params / kMiB;
  return size;
}

double bops_g(const SearchSpace& space, const std::vector<int>& bits, int act_bits,
              bool reference_bops) {
  check_bits(space, bits, "bops_g");
  OMPQ_CHECK(act_bits > 0, "bops_g: activation bits ", act_bits, " (expected > 0)");
  auto flops = [&](const SearchUnit& u) {
    return static_cast<double>(reference_bops ? u.reference_flops : u.flops);
  };
  double bops = 0.0;
  for (const SearchUnit& unit : space.fixed) {
    bops += flops(unit) * SearchSpace::kFixedBits * SearchSpace::kFixedBits;
  }
  for (size_t i = 0; i < bits.size(); ++i) bops += flops(space.units[i]) * bits[i] * act_bits;
  return bops / 1e9;
}

double fp32_size_mib(const SearchSpace& space) {
  double params = 0.0;
  for (const SearchUnit& unit : space.units) params += unit.params / kMiB;
  for (const SearchUnit& unit : space.fixed) params += unit.params / kMiB;
  return 4 * params;
}

Range size_range_mib(const SearchSpace& space) {
  return {model_size_mib(space, uniform_bits(space, space.min_bits)),
          model_size_mib(space, uniform_bits(space, space.max_bits))};
}

Range bops_range_g(const SearchSpace& space, int act_bits, bool reference_bops) {
  return {bops_g(space, uniform_bits(space, space.min_bits), act_bits, reference_bops),
          bops_g(space, uniform_bits(space, space.max_bits), act_bits, reference_bops)};
}

}  // namespace ompq::solver
