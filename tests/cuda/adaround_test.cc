// CUDA AdaRound kernels against the CPU kernels on fresh random inputs: the rounding variables'
// init, soft and hard rounding, the soft rounding's alpha gradient, the regularizer and its
// gradient, per tensor and per channel (axis 0, 1 and last), symmetric and affine grids, in f32
// and f64, on odd shapes and on a size that spreads the regularizer's sum over many blocks. Then
// a QConv2d with a folded batch norm learns its rounding for a few Adam steps (warm-up, then the
// regularizer) on both devices from the same weights and data.
// Both devices run core/ops/adaround_math.h with IEEE division and floor, so hard rounding is
// bit-exact. exp, log and pow come from different math libraries (a few ulps apart) and the
// compilers contract multiply-adds differently, so: init and gradients rtol 1e-5 (f32) / 1e-12
// (f64), but the regularizer's gradient in f32 1e-4 (the power |2 h - 1|^(beta - 1) magnifies
// h's difference); soft rounding adds h to a code of up to 255, whose ulp it may round to
// differently: atol 8 ulps of the grid's range; the regularizer's double sum of f32 terms rtol
// 1e-5 / 1e-12.
// Needs a GPU.
#include "core/ops/adaround.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "core/ops/elementwise.h"
#include "cuda_test_util.h"
#include "layers/optim.h"
#include "layers/quant/adaround.h"
#include "layers/quant/quantized_layer.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::expect_equal;
using testing::on_gpu;
using testing::random_tensor_in;

double eps_of(DType dtype) { return dtype == DType::kF32 ? 0x1p-23 : 0x1p-52; }
double rtol_for(DType dtype) { return dtype == DType::kF32 ? 1e-5 : 1e-12; }

struct AdaRoundCase {
  const char* name;
  Shape shape;
  std::optional<int64_t> axis;
  QuantRange range;
  bool affine;
};

const AdaRoundCase kCases[] = {
    {"per-tensor 4-bit unsigned affine", {3, 5, 7}, std::nullopt, {0, 15}, true},
    {"per-tensor 8-bit signed", {2, 9, 11, 3}, std::nullopt, {-128, 127}, false},
    {"axis 0 2-bit unsigned affine (conv weight)", {13, 3, 3, 3}, 0, {0, 3}, true},
    {"axis 0 3-bit signed (linear weight)", {7, 21}, 0, {-4, 3}, false},
    {"axis 1 5-bit signed affine", {4, 6, 5, 5}, 1, {-16, 15}, true},
    {"last axis 8-bit unsigned affine", {9, 4, 11}, -1, {0, 255}, true},
    {"axis 0 4-bit unsigned affine, many blocks", {96, 64, 3, 3}, 0, {0, 15}, true},
};

// The widest grid (qmax - qmin) * scale that random_grid draws.
constexpr double kMaxGridWidth = 2.8;

struct Grid {
  Tensor scale, zero_point;
};

// Grids 1.2 to 2.8 wide for the weights in [-1, 1): with the zero points anywhere in the code
// range, some weights fall outside the grid (the clamp) and most inside.
Grid random_grid(const AdaRoundCase& c, DType dtype, uint64_t seed) {
  const int64_t channels = c.axis ? c.shape[(*c.axis + c.shape.size()) % c.shape.size()] : 1;
  const Shape shape = c.axis ? Shape{channels} : Shape{};
  const double levels = static_cast<double>(c.range.qmax - c.range.qmin);
  Grid g;
  g.scale = random_tensor_in(shape, dtype, seed, 1.2 / levels, kMaxGridWidth / levels);
  if (c.affine) {
    g.zero_point = testing::random_integers(shape, dtype, seed + 1, c.range.qmin, c.range.qmax);
  }
  return g;
}

TEST(CudaAdaRound, InitMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9700;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const AdaRoundCase& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype));
      const Tensor w = random_tensor_in(c.shape, dtype, seed++, -1, 1);
      const Grid g = random_grid(c, dtype, seed++);
      const Tensor alpha = ops::adaround_init(on_gpu(w), on_gpu(g.scale), c.axis);
      ASSERT_TRUE(alpha.device().is_cuda());
      expect_close(ops::adaround_init(w, g.scale, c.axis), alpha, rtol_for(dtype), rtol_for(dtype),
                   "alpha");
    }
  }
}

TEST(CudaAdaRound, QuantizeAndItsGradientMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9800;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const AdaRoundCase& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype));
      const Tensor w = random_tensor_in(c.shape, dtype, seed++, -1, 1);
      // Past +-2.4 the rectified sigmoid clamps to 0 or 1: both branches of h and h' are covered.
      const Tensor alpha = random_tensor_in(c.shape, dtype, seed++, -4, 4);
      const Grid g = random_grid(c, dtype, seed++);
      const Tensor w_gpu = on_gpu(w), alpha_gpu = on_gpu(alpha);
      const Tensor scale_gpu = on_gpu(g.scale), zero_gpu = on_gpu(g.zero_point);
      const double atol = 8 * eps_of(dtype) * kMaxGridWidth;
      expect_close(
          ops::adaround_quantize(w, alpha, g.scale, g.zero_point, c.axis, c.range, false),
          ops::adaround_quantize(w_gpu, alpha_gpu, scale_gpu, zero_gpu, c.axis, c.range, false),
          rtol_for(dtype), atol, "soft");
      expect_equal(
          ops::adaround_quantize(w, alpha, g.scale, g.zero_point, c.axis, c.range, true),
          ops::adaround_quantize(w_gpu, alpha_gpu, scale_gpu, zero_gpu, c.axis, c.range, true),
          "hard");
      const Tensor grad = random_tensor_in(c.shape, dtype, seed++, -1, 1);
      expect_close(
          ops::adaround_quantize_backward(grad, w, alpha, g.scale, g.zero_point, c.axis, c.range),
          ops::adaround_quantize_backward(on_gpu(grad), w_gpu, alpha_gpu, scale_gpu, zero_gpu,
                                          c.axis, c.range),
          rtol_for(dtype), rtol_for(dtype) * 1e-3, "grad alpha");
    }
  }
}

TEST(CudaAdaRound, RegularizerAndItsGradientMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9900;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const AdaRoundCase& c : kCases) {
      for (double beta : {1.0, 2.0, 11.3, 20.0}) {
        SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype) + " beta " +
                     std::to_string(beta));
        const Tensor alpha = random_tensor_in(c.shape, dtype, seed++, -4, 4);
        const Tensor alpha_gpu = on_gpu(alpha);
        const Tensor reg = ops::adaround_regularizer(alpha_gpu, beta);
        ASSERT_EQ(reg.dim(), 0);
        expect_close(ops::adaround_regularizer(alpha, beta), reg, rtol_for(dtype), 0,
                     "regularizer");
        const Tensor grad = random_tensor_in({}, dtype, seed++, 0.5, 2);
        // |u|^(beta - 1), u = 2 h - 1, multiplies the few-ulp difference in h by up to beta / |u|.
        const double rtol = dtype == DType::kF32 ? 1e-4 : 1e-12;
        expect_close(ops::adaround_regularizer_backward(grad, alpha, beta),
                     ops::adaround_regularizer_backward(on_gpu(grad), alpha_gpu, beta), rtol,
                     rtol * 1e-2, "grad alpha");
      }
    }
  }
}

TEST(CudaAdaRound, RegularizerIsDeterministic) {
  OMPQ_REQUIRE_GPU();
  const Tensor alpha = on_gpu(random_tensor_in({1000003}, DType::kF32, 9950, -4, 4));
  const double first = ops::adaround_regularizer(alpha, 7.5).item_double();
  for (int run = 0; run < 3; ++run) {
    EXPECT_EQ(ops::adaround_regularizer(alpha, 7.5).item_double(), first);
  }
}

// A conv with a folded batch norm, quantized with BRECQ's 4-bit weights, on `device`: the same
// weights, statistics and (CPU-searched) grid whatever the device.
struct Rig {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  std::shared_ptr<nn::QConv2d> layer;
};

Rig make_rig(Device device, const nn::WeightQuantizer* calibrated) {
  Generator gen(9960);
  Conv2dParams p;
  p.padding = {1, 1};
  Rig rig;
  rig.conv = std::make_shared<nn::Conv2d>(5, 7, std::array<int64_t, 2>{3, 3}, p, true, gen);
  rig.bn = std::make_shared<nn::BatchNorm2d>(7);
  {
    NoGradGuard no_grad;
    Tensor(rig.bn->running_mean()).copy_(ops::mul(randn({7}, gen), 0.1));
    Tensor(rig.bn->running_var()).copy_(ops::add(rand({7}, gen), 0.5));
    Tensor(rig.bn->weight()).copy_(ops::add(rand({7}, gen), 0.5));
  }
  rig.layer = std::make_shared<nn::QConv2d>(*rig.conv, nn::ptq_layer_config(4, 0), rig.bn);
  if (calibrated != nullptr) {
    EXPECT_TRUE(rig.layer->weight_quantizer().load_state_dict(calibrated->state_dict()).ok());
  } else {
    rig.layer->weight_quantizer().calibrate(rig.layer->weight_and_bias().weight.detach());
  }
  rig.conv->to(device);
  rig.bn->to(device);
  rig.layer->to(device);
  return rig;
}

struct Reconstruction {
  std::vector<double> losses;
  Tensor alpha;        // after the last step
  Tensor hard_weight;  // the hard-rounded folded weight
  Tensor baked;        // the conv's weight after bake_adaptive_rounding
};

// BRECQ's loop (solver/quantize/ptq.cc) in miniature: Adam on alpha, the reconstruction loss, and
// from the warm-up's end the rounding regularizer with annealed beta.
Reconstruction reconstruct(Rig& rig, const Tensor& x, const Tensor& target) {
  nn::WeightQuantizer& q = rig.layer->weight_quantizer();
  q.start_adaptive_rounding(rig.layer->weight_and_bias().weight.detach());
  AdamOptions adam;
  adam.lr = 1e-2;
  nn::Adam optimizer(std::vector<Tensor>{q.rounding_variables()}, adam);
  const nn::AdaRoundSchedule schedule{8, 0.25, 20.0, 2.0};
  Reconstruction r;
  for (int64_t t = 1; t <= schedule.iterations; ++t) {
    Tensor loss = mean(square(sub(rig.layer->forward(x), target)));
    if (schedule.regularized(t)) {
      loss = add(loss, mul(q.rounding_regularizer(schedule.beta(t)), 1e-2));
    }
    r.losses.push_back(loss.item_double());
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  r.alpha = q.rounding_variables().detach().clone();
  q.set_rounding_hard(true);
  r.hard_weight = rig.layer->quantized_weight().detach();
  nn::bake_adaptive_rounding(*rig.layer, rig.conv->weight());
  r.baked = rig.conv->weight().detach();
  return r;
}

TEST(CudaAdaRound, QuantizedConvLearnsTheSameRoundingAsOnTheCpu) {
  OMPQ_REQUIRE_GPU();
  Rig cpu = make_rig(Device::cpu(), nullptr);
  Rig gpu = make_rig(Device::cuda(), &cpu.layer->weight_quantizer());
  ASSERT_TRUE(gpu.layer->weight_quantizer().spec().scale.device().is_cuda());
  const Tensor x = random_tensor_in({3, 5, 9, 8}, DType::kF32, 9961, -1, 1);
  const Tensor target = random_tensor_in({3, 7, 9, 8}, DType::kF32, 9962, -1, 1);
  const Reconstruction expected = reconstruct(cpu, x, target);
  const Reconstruction actual = reconstruct(gpu, on_gpu(x), on_gpu(target));
  ASSERT_TRUE(actual.alpha.device().is_cuda());
  ASSERT_EQ(expected.losses.size(), actual.losses.size());
  for (size_t t = 0; t < expected.losses.size(); ++t) {
    EXPECT_NEAR(actual.losses[t], expected.losses[t], 1e-5 * expected.losses[t]) << "step " << t;
  }
  // Adam's steps are lr * m / sqrt(v): relative gradient errors of 1e-5 move alpha by ~1e-7.
  expect_close(expected.alpha, actual.alpha, 1e-4, 1e-5, "alpha");
  // Both devices decided alike, and baked the decisions alike.
  expect_close(expected.hard_weight, actual.hard_weight, 1e-6, 1e-6, "hard-rounded weight");
  expect_close(expected.baked, actual.baked, 1e-6, 1e-6, "baked weight");
}

}  // namespace
}  // namespace ompq
