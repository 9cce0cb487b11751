#include "layers/quant/mse_range.h"

#include <vector>

#include "core/autograd.h"
#include "core/ops/quant.h"
#include "core/ops/reduce.h"

namespace ompq::nn {
namespace {

constexpr int64_t kCandidates = 80;
constexpr double kShrinkStep = 0.01;
constexpr double kLpNorm = 2.4;

// x (contiguous) as [outer, C, inner] around `axis` ([1, 1, numel] per tensor), so that per-channel
// statistics reduce dims {0, 2} whatever x's rank.
Tensor channel_view(const Tensor& x, std::optional<int64_t> axis) {
  if (!axis) return x.view({1, 1, x.numel()});
  const int64_t a = wrap_dim(*axis, x.dim(), "channel_range");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= x.size(d);
  for (int64_t d = a + 1; d < x.dim(); ++d) inner *= x.size(d);
  return x.view({outer, x.size(a), inner});
}

const std::vector<int64_t> kChannelReducedDims = {0, 2};

}  // namespace

ChannelRange channel_range(const Tensor& x, std::optional<int64_t> axis) {
  OMPQ_CHECK(x.numel() > 0, "channel_range: empty tensor of shape ", shape_str(x.shape()));
  const Tensor v = channel_view(x.detach().contiguous(), axis);
  return {ops::amin(v, kChannelReducedDims, false).to_vector<double>(),
          ops::amax(v, kChannelReducedDims, false).to_vector<double>()};
}

RangeParams mse_range_params(const Tensor& x, const QuantSpec& spec) {
  check_spec(spec, "mse_range_params");
  NoGradGuard no_grad;
  const Tensor data = x.detach().contiguous();
  const ChannelRange range = channel_range(data, spec.axis);
  const size_t channels = range.min.size();
  // Every candidate's parameters, candidate-major: [K, C].
  std::vector<double> scales, zeros;
  for (int64_t i = 0; i < kCandidates; ++i) {
    const double shrink = 1.0 - kShrinkStep * i;
    std::vector<double> lo(channels), hi(channels);
    for (size_t c = 0; c < channels; ++c) {
      lo[c] = range.min[c] * shrink;
      hi[c] = range.max[c] * shrink;
    }
    const RangeParams candidate = params_from_range(lo, hi, spec);
    scales.insert(scales.end(), candidate.scale.begin(), candidate.scale.end());
    zeros.insert(zeros.end(), candidate.zero_point.begin(), candidate.zero_point.end());
  }
  const Shape shape =
      spec.axis ? Shape{kCandidates, static_cast<int64_t>(channels)} : Shape{kCandidates};
  auto as_data = [&](const std::vector<double>& v) {
    return Tensor::from_vector(v, shape).to(data.dtype()).to(data.device());
  };
  const std::vector<double> score =
      ops::fake_quantize_error(data, as_data(scales), spec.symmetric ? Tensor() : as_data(zeros),
                               spec.axis, spec.range(), kLpNorm)
          .to_vector<double>();
  RangeParams best;
  for (size_t c = 0; c < channels; ++c) {
    int64_t best_k = 0;  // the first of equal scores, as BRECQ's strict comparison
    for (int64_t k = 1; k < kCandidates; ++k) {
      if (score[k * channels + c] < score[best_k * channels + c]) best_k = k;
    }
    best.scale.push_back(scales[best_k * channels + c]);
    if (!spec.symmetric) best.zero_point.push_back(zeros[best_k * channels + c]);
  }
  return best;
}

}  // namespace ompq::nn
