// Parameter initializers with torch.nn.init's semantics (fan computation, gains, bounds), drawing
// from a Generator so that a model's initial weights are a pure function of the seed. They write
// in place without autograd and return the tensor.
#pragma once

#include <cstdint>
#include <utility>

#include "core/random.h"
#include "core/tensor.h"

namespace ompq::nn::init {

enum class FanMode { kFanIn, kFanOut };
enum class Nonlinearity { kLinear, kSigmoid, kTanh, kRelu, kLeakyRelu };

// torch.nn.init.calculate_gain; `negative_slope` is used by kLeakyRelu only.
double calculate_gain(Nonlinearity nonlinearity, double negative_slope = 0.01);

// (fan_in, fan_out) = (size(1), size(0)) times the receptive field (product of dims 2..); throws
// for tensors with fewer than 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

const Tensor& uniform_(const Tensor& t, double low = 0.0, double high = 1.0,
                       Generator& gen = default_generator());
const Tensor& normal_(const Tensor& t, double mean = 0.0, double std = 1.0,
                      Generator& gen = default_generator());
const Tensor& constant_(const Tensor& t, double value);
const Tensor& zeros_(const Tensor& t);
const Tensor& ones_(const Tensor& t);

// He initialization: std = gain(nonlinearity, a) / sqrt(fan). Uniform draws from
// [-sqrt(3) * std, sqrt(3) * std]. `a` is the negative slope of a leaky ReLU (0: ReLU).
const Tensor& kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::kFanIn,
                               Nonlinearity nonlinearity = Nonlinearity::kLeakyRelu,
                               Generator& gen = default_generator());
const Tensor& kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::kFanIn,
                              Nonlinearity nonlinearity = Nonlinearity::kLeakyRelu,
                              Generator& gen = default_generator());

}  // namespace ompq::nn::init
