#include "layers/init.h"

#include <cmath>

#include "core/ops/copy.h"

namespace ompq::nn::init {
namespace {

double kaiming_std(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity,
                   const char* who) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  int64_t fan = mode == FanMode::kFanIn ? fan_in : fan_out;
  OMPQ_CHECK(fan > 0, who, ": tensor of shape ", shape_str(t.shape()), " has a zero fan");
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double negative_slope) {
  switch (nonlinearity) {
    case Nonlinearity::kLinear:
    case Nonlinearity::kSigmoid:
      return 1.0;
    case Nonlinearity::kTanh:
      return 5.0 / 3.0;
    case Nonlinearity::kRelu:
      return std::sqrt(2.0);
    case Nonlinearity::kLeakyRelu:
      return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  }
  return 1.0;
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  OMPQ_CHECK(t.dim() >= 2, "calculate_fan_in_and_fan_out: tensor of shape ", shape_str(t.shape()),
             " has fewer than 2 dimensions");
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive_field *= t.size(d);
  return {t.size(1) * receptive_field, t.size(0) * receptive_field};
}

const Tensor& uniform_(const Tensor& t, double low, double high, Generator& gen) {
  OMPQ_CHECK(low <= high, "uniform_: low ", low, " > high ", high);
  ops::uniform_(t, low, high, gen);
  return t;
}

const Tensor& normal_(const Tensor& t, double mean, double std, Generator& gen) {
  OMPQ_CHECK(std >= 0, "normal_: negative std ", std);
  ops::normal_(t, mean, std, gen);
  return t;
}

const Tensor& constant_(const Tensor& t, double value) {
  ops::fill_(t, value);
  return t;
}

const Tensor& zeros_(const Tensor& t) { return constant_(t, 0.0); }
const Tensor& ones_(const Tensor& t) { return constant_(t, 1.0); }

const Tensor& kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity,
                               Generator& gen) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_");
  return uniform_(t, -bound, bound, gen);
}

const Tensor& kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity,
                              Generator& gen) {
  return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"), gen);
}

}  // namespace ompq::nn::init
