#include "layers/quant/mse_range.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/quant.h"
#include "core/ops/reduce.h"

namespace ompq::nn {
namespace {

constexpr int kCandidates = 80;
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

Tensor vector_tensor(const std::vector<double>& v, bool per_channel, const Tensor& like) {
  Tensor t = per_channel ? Tensor::from_vector(v, {static_cast<int64_t>(v.size())})
                         : Tensor::scalar(v.at(0), DType::kF64);
  return t.to(like.dtype()).to(like.device());
}

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
  const Tensor channels_view = channel_view(data, spec.axis);
  const size_t channels = range.min.size();
  RangeParams best;
  std::vector<double> best_score(channels, std::numeric_limits<double>::infinity());
  best.scale.assign(channels, 0.0);
  if (!spec.symmetric) best.zero_point.assign(channels, 0.0);
  for (int i = 0; i < kCandidates; ++i) {
    const double shrink = 1.0 - kShrinkStep * i;
    std::vector<double> lo(channels), hi(channels);
    for (size_t c = 0; c < channels; ++c) {
      lo[c] = range.min[c] * shrink;
      hi[c] = range.max[c] * shrink;
    }
    const RangeParams candidate = params_from_range(lo, hi, spec);
    const bool per_channel = spec.axis.has_value();
    Tensor scale = vector_tensor(candidate.scale, per_channel, data);
    Tensor zero = spec.symmetric ? Tensor() : vector_tensor(candidate.zero_point, per_channel, data);
    Tensor q = ops::fake_quantize(data, scale, zero, spec.axis, spec.range());
    const Tensor error = ops::pow(ops::abs(ops::sub(data, q)), kLpNorm);
    const std::vector<double> score =
        ops::mean(error.view(channels_view.shape()), kChannelReducedDims, false).to_vector<double>();
    for (size_t c = 0; c < channels; ++c) {
      if (score[c] < best_score[c]) {
        best_score[c] = score[c];
        best.scale[c] = candidate.scale[c];
        if (!spec.symmetric) best.zero_point[c] = candidate.zero_point[c];
      }
    }
  }
  return best;
}

}  // namespace ompq::nn
