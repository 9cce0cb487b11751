#include "layers/quant/quant_spec.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/functional/quant.h"
#include "core/ops/quant_math.h"

namespace ompq::nn {

namespace {
constexpr double kMinScale = 1e-8;
}  // namespace

int64_t QuantSpec::qmin() const { return quant_qmin(bits, is_signed); }
int64_t QuantSpec::qmax() const { return quant_qmax(bits, is_signed); }

std::string QuantSpec::str() const {
  return absl::StrCat(bits, "-bit ", is_signed ? "signed" : "unsigned", " ",
                      symmetric ? "symmetric" : "affine", " ",
                      axis ? absl::StrCat("per-channel(axis ", *axis, ")") : "per-tensor");
}

void check_spec(const QuantSpec& spec, const char* who) {
  OMPQ_CHECK(spec.bits >= 2 && spec.bits <= 8, who, ": ", spec.bits,
             "-bit quantization (expected 2..8 bits)");
  if (!spec.scale.defined()) return;
  if (spec.axis) {
    OMPQ_CHECK(spec.scale.dim() == 1, who, ": per-channel scale of shape ",
               shape_str(spec.scale.shape()), " (expected [C])");
  } else {
    OMPQ_CHECK(spec.scale.dim() == 0, who, ": per-tensor scale of shape ",
               shape_str(spec.scale.shape()), " (expected a 0-dim tensor)");
  }
  OMPQ_CHECK(spec.symmetric != spec.zero_point.defined(), who, ": a ", spec.str(), " quantizer ",
             spec.symmetric ? "has a zero point" : "has no zero point");
}

QuantSpec qat_weight_spec(int bits) {
  QuantSpec spec;
  spec.bits = bits;
  spec.axis = 0;
  check_spec(spec, "qat_weight_spec");
  return spec;
}

QuantSpec qat_activation_spec(int bits) {
  QuantSpec spec;
  spec.bits = bits;
  spec.is_signed = bits == 8;
  check_spec(spec, "qat_activation_spec");
  return spec;
}

QuantSpec ptq_weight_spec(int bits) {
  QuantSpec spec;
  spec.bits = bits;
  spec.is_signed = false;
  spec.symmetric = false;
  spec.axis = 0;
  check_spec(spec, "ptq_weight_spec");
  return spec;
}

QuantSpec ptq_activation_spec(int bits) {
  QuantSpec spec;
  spec.bits = bits;
  spec.is_signed = false;
  spec.symmetric = false;
  check_spec(spec, "ptq_activation_spec");
  return spec;
}

RangeParams params_from_range(const std::vector<double>& min, const std::vector<double>& max,
                              const QuantSpec& spec) {
  OMPQ_CHECK(min.size() == max.size(), "params_from_range: ", min.size(), " minima for ",
             max.size(), " maxima");
  const double levels = static_cast<double>((int64_t{1} << spec.bits) - 1);
  RangeParams p;
  for (size_t c = 0; c < min.size(); ++c) {
    double scale;
    if (spec.symmetric && spec.is_signed) {
      scale = std::max(std::fabs(min[c]), std::fabs(max[c])) / static_cast<double>(spec.qmax());
    } else {
      scale = (max[c] - min[c]) / levels;
    }
    scale = std::max(scale, kMinScale);
    p.scale.push_back(scale);
    if (!spec.symmetric) p.zero_point.push_back(std::nearbyint(-min[c] / scale));
  }
  return p;
}

QuantSpec spec_in_dtype(const QuantSpec& spec, DType dtype) {
  QuantSpec out = spec;
  if (out.scale.defined() && out.scale.dtype() != dtype) {
    // A cast that keeps the scale's autograd edge, so that a learned scale still gets its gradient.
    out.scale = out.scale.to(dtype);
  }
  if (out.zero_point.defined() && out.zero_point.dtype() != dtype) {
    out.zero_point = out.zero_point.to(dtype);
  }
  return out;
}

void write_range_params(const QuantSpec& spec, const RangeParams& params) {
  NoGradGuard no_grad;
  Tensor scale = spec.scale, zero_point = spec.zero_point;  // handles to the quantizer's tensors
  scale.copy_(Tensor::from_vector(params.scale, scale.shape()));
  if (zero_point.defined()) zero_point.copy_(Tensor::from_vector(params.zero_point, scale.shape()));
}

Tensor fake_quantize(const Tensor& x, const QuantSpec& spec, bool clip_gradient) {
  check_spec(spec, "fake_quantize");
  return ompq::fake_quantize(x, spec.scale, spec.zero_point, spec.axis, spec.range(),
                             clip_gradient);
}

Tensor quantize(const Tensor& x, const QuantSpec& spec) {
  check_spec(spec, "quantize");
  return ops::quantize(x, spec.scale, spec.zero_point, spec.axis, spec.range());
}

Tensor dequantize(const Tensor& codes, const QuantSpec& spec) {
  check_spec(spec, "dequantize");
  return ops::dequantize(codes, spec.scale, spec.zero_point, spec.axis);
}

}  // namespace ompq::nn
