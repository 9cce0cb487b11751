// Batch norm: forward against a naive reference and PyTorch 1.13 golden values, running-stat
// updates, f64 finite-difference gradients in train and eval mode, channels_last inputs against
// the NCHW results, and bad inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/norm.h"
#include "core/ops/conv.h"
#include "core/ops/norm.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;

void expect_near_vectors(const std::vector<double>& actual, const std::vector<double>& expected,
                         double tol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], tol) << "at " << i;
}

// The same values in channels_last memory (autograd-aware: gradients flow back to t).
Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

// x[i] = 2 sin(0.37 i) + offset[c] for a [2, 3, 2, 2] tensor: the input of the golden values below.
Tensor golden_input(DType dtype) {
  const double offset[3] = {0.5, -1.0, 3.0};
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = 2 * std::sin(0.37 * i) + offset[(i / 4) % 3];
  return Tensor::from_vector(v, {2, 3, 2, 2}).to(dtype);
}

// Naive per-channel reference: the batch statistics over (N, spatial), computed in double; the
// variance used is the biased one times var_scale.
std::vector<double> reference_batch_norm(const Tensor& x, const std::vector<double>& weight,
                                         const std::vector<double>& bias, double eps,
                                         double var_scale = 1.0) {
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = 0, var = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < s; ++i) mean += v[(b * c + ch) * s + i];
    mean /= n * s;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < s; ++i) var += std::pow(v[(b * c + ch) * s + i] - mean, 2);
    var = var / (n * s) * var_scale;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < s; ++i) {
        int64_t k = (b * c + ch) * s + i;
        out[k] = (v[k] - mean) / std::sqrt(var + eps) * weight[ch] + bias[ch];
      }
  }
  return out;
}

TEST(BatchNorm, TrainMatchesPyTorchGoldenAndUpdatesRunningStats) {
  // torch.nn.functional.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2, eps=1e-5), f64.
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-8 : 1e-5;
    Tensor x = golden_input(dtype);
    Tensor rm = Tensor::from_vector<double>({0.1, -0.2, 0.3}, {3}).to(dtype);
    Tensor rv = Tensor::from_vector<double>({1.0, 0.5, 2.0}, {3}).to(dtype);
    Tensor w = Tensor::from_vector<double>({1.5, -0.5, 2.0}, {3}).to(dtype);
    Tensor b = Tensor::from_vector<double>({0.1, 0.2, -0.3}, {3}).to(dtype);
    Tensor y = batch_norm(x, w, b, rm, rv, /*training=*/true, /*momentum=*/0.2, 1e-5);
    expect_near_vectors(
        y.to_vector<double>(),
        {0.5093980445, 1.254906832,  1.899514503,  2.355976433,   -0.3627300336, -0.3236896023,
         -0.1378719541, 0.1695733639, -0.6192129795, -1.705304313, -2.716558732, -3.516107693,
         -1.47619911,  -1.542395022, -1.330890369, -0.8703113117, 1.161555242,   0.7530871993,
         0.3456596842, -0.0055838998, 1.500804031,  1.789434291,  1.67990499,    1.187040406},
        tol);
    expect_near_vectors(rm.to_vector<double>(), {0.1005671868, -0.1611703948, 0.9554892198}, tol);
    expect_near_vectors(rv.to_vector<double>(), {1.284006037, 0.5795895291, 2.019609226}, tol);

    // Eval with the updated buffers (PyTorch: training=False on the same rm, rv).
    Tensor y_eval = batch_norm(x, w, b, rm, rv, /*training=*/false, 0.2, 1e-5);
    expect_near_vectors(
        y_eval.to_vector<double>(),
        {0.628749262,  1.586126255,  2.413926763,  3.000111871,   -0.5571984518, -0.5117433229,
         -0.295394147, 0.06256722992, 3.085613006, 2.050126781,   1.085990536,   0.3236955887,
         -1.921140241, -2.006148553, -1.734535807, -1.143063513,  1.217540743,   0.7419576897,
         0.2675861325, -0.1413699635, 5.106850394, 5.382032277,   5.277606361,   4.807706204},
        tol);
    // Eval leaves the buffers alone.
    expect_near_vectors(rm.to_vector<double>(), {0.1005671868, -0.1611703948, 0.9554892198}, tol);
  }
}

TEST(BatchNorm, TrainAndEvalMatchNaiveReference) {
  Generator gen(7);
  // Spatial sizes below, at and off the kernel's 8-lane blocks; [N, C] with C across channel groups.
  for (Shape shape : {Shape{16, 5}, Shape{9, 300}, Shape{4, 3, 5, 7}, Shape{3, 70, 2, 3},
                      Shape{2, 4, 4, 4}}) {
    SCOPED_TRACE(shape_str(shape));
    Tensor x = randn(shape, gen);
    const int64_t c = shape[1];
    const double count = static_cast<double>(x.numel() / c);
    Tensor w = randn({c}, gen), b = randn({c}, gen);
    Tensor rm = Tensor::zeros({c}), rv = Tensor::ones({c});
    // momentum 1: the buffers take the batch mean and the unbiased batch variance.
    Tensor y = batch_norm(x, w, b, rm, rv, /*training=*/true, /*momentum=*/1.0);
    std::vector<double> wv = w.to_vector<double>(), bv = b.to_vector<double>();
    expect_near_vectors(y.to_vector<double>(), reference_batch_norm(x, wv, bv, 1e-5), 1e-4);
    Tensor y_eval = batch_norm(x, w, b, rm, rv, /*training=*/false);
    expect_near_vectors(y_eval.to_vector<double>(),
                        reference_batch_norm(x, wv, bv, 1e-5, count / (count - 1)), 1e-4);
  }
}

TEST(BatchNorm, SameBitsForAnyThreadCount) {
  // Large enough that the kernels split the channels (NCHW) or the rows ([N, C], channels_last)
  // between threads.
  for (Shape shape : {Shape{8, 6, 64, 64}, Shape{4096, 256}, Shape{8, 24, 32, 32}}) {
    Generator gen(12);
    const bool channels_last = shape[1] == 24;
    Tensor x = randn(shape, gen), dy = randn(shape, gen), w = randn({shape[1]}, gen);
    if (channels_last) dy = to_channels_last(dy);
    auto run = [&](int threads) {
      set_num_threads(threads);
      Tensor xr = channels_last ? to_channels_last(x) : x.clone(), wr = w.clone();
      EXPECT_EQ(is_channels_last(xr), channels_last);
      xr.set_requires_grad(true);
      wr.set_requires_grad(true);
      Tensor y = batch_norm(xr, wr, Tensor(), Tensor(), Tensor(), /*training=*/true);
      y.backward(dy);
      return std::vector<std::vector<float>>{y.to_vector<float>(), xr.grad().to_vector<float>(),
                                             wr.grad().to_vector<float>()};
    };
    const int threads = num_threads();
    auto one = run(1);
    auto three = run(3);
    set_num_threads(threads);
    EXPECT_TRUE(one == three) << shape_str(shape);
  }
}

// The interleaved kernels (channels as vector lanes, rows in fixed blocks) against the planar
// ones on the same values: outputs, running statistics and all three gradients, in f32 and f64,
// with grad_output in either layout. Shapes: few channels, channel counts off the vector width,
// more rows than one block, and many channels with few rows.
TEST(BatchNorm, ChannelsLastMatchesNchw) {
  Generator gen(31);
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-12 : 2e-5;
    for (Shape shape : {Shape{4, 3, 5, 7}, Shape{3, 70, 2, 3}, Shape{2, 13, 30, 30},
                        Shape{2, 300, 3, 2}}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape));
      const int64_t c = shape[1];
      Tensor x = randn(shape, gen, dtype), dy = randn(shape, gen, dtype);
      Tensor w = randn({c}, gen, dtype), b = randn({c}, gen, dtype);
      Tensor x_cl = to_channels_last(x);
      ASSERT_TRUE(is_channels_last(x_cl));
      for (bool training : {true, false}) {
        SCOPED_TRACE(training ? "train" : "eval");
        Tensor rm = randn({c}, gen, dtype), rv = rand({c}, gen, dtype);
        Tensor rm_cl = rm.clone(), rv_cl = rv.clone();
        auto nchw = ops::batch_norm(x, w, b, rm, rv, training, 0.3, 1e-5);
        auto cl = ops::batch_norm(x_cl, w, b, rm_cl, rv_cl, training, 0.3, 1e-5);
        EXPECT_TRUE(is_channels_last(cl.output));
        expect_near_vectors(cl.output.to_vector<double>(), nchw.output.to_vector<double>(), tol);
        expect_near_vectors(cl.mean.to_vector<double>(), nchw.mean.to_vector<double>(), tol);
        expect_near_vectors(cl.var.to_vector<double>(), nchw.var.to_vector<double>(), tol);
        expect_near_vectors(rm_cl.to_vector<double>(), rm.to_vector<double>(), tol);
        expect_near_vectors(rv_cl.to_vector<double>(), rv.to_vector<double>(), tol);

        auto grads = ops::batch_norm_backward(dy, x, w, nchw.mean, nchw.var, 1e-5, training,
                                              {true, true, true});
        for (const Tensor& dy_any : {to_channels_last(dy), dy}) {
          auto grads_cl = ops::batch_norm_backward(dy_any, x_cl, w, nchw.mean, nchw.var, 1e-5,
                                                   training, {true, true, true});
          EXPECT_TRUE(is_channels_last(grads_cl.input));
          // Sums over up to 1800 values: tolerances scale with the count.
          const double sum_tol = tol * static_cast<double>(x.numel() / c);
          expect_near_vectors(grads_cl.input.to_vector<double>(), grads.input.to_vector<double>(),
                              tol * 10);
          expect_near_vectors(grads_cl.weight.to_vector<double>(),
                              grads.weight.to_vector<double>(), sum_tol);
          expect_near_vectors(grads_cl.bias.to_vector<double>(), grads.bias.to_vector<double>(),
                              sum_tol);
        }
      }
    }
  }
}

TEST(BatchNorm, ChannelsLastGradientsInTrainAndEvalMode) {
  Generator gen(32);
  Tensor rm = randn({5}, gen, DType::kF64), rv = rand({5}, gen, DType::kF64);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "train" : "eval");
    auto fn = [&](const std::vector<Tensor>& in) {
      return batch_norm(to_channels_last(in[0]), in[1], in[2], training ? Tensor() : rm,
                        training ? Tensor() : rv, training);
    };
    std::vector<Tensor> inputs = {randn({3, 5, 3, 4}, gen, DType::kF64),
                                  randn({5}, gen, DType::kF64), randn({5}, gen, DType::kF64)};
    EXPECT_TRUE(is_channels_last(fn(inputs)));
    testing::expect_gradients_match(fn, inputs);
  }
}

TEST(BatchNorm, WithoutAffineIsPlainNormalization) {
  Generator gen(3);
  Tensor x = randn({6, 4, 3, 3}, gen, DType::kF64);
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), /*training=*/true);
  expect_near_vectors(y.to_vector<double>(),
                      reference_batch_norm(x, {1, 1, 1, 1}, {0, 0, 0, 0}, 1e-5), 1e-10);
}

TEST(BatchNorm, F32StatisticsStayAccurateForLargeMeans) {
  // A channel with mean 1e4 and standard deviation 1e-1: naive f32 sums of x^2 lose all of the
  // variance; the shifted double accumulation keeps it.
  Generator gen(11);
  std::vector<double> v = randn({32, 2, 8, 8}, gen, DType::kF64).to_vector<double>();
  for (double& e : v) e = 1e4 + 0.1 * e;
  Tensor x = Tensor::from_vector(v, {32, 2, 8, 8}).to(DType::kF32);
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, /*training=*/true, /*momentum=*/1.0);
  // The same f32 values in f64; momentum 1 leaves the batch mean and unbiased variance.
  Tensor rm64 = Tensor::zeros({2}, DType::kF64), rv64 = Tensor::ones({2}, DType::kF64);
  batch_norm(x.to(DType::kF64), Tensor(), Tensor(), rm64, rv64, /*training=*/true, 1.0);
  expect_near_vectors(rv.to_vector<double>(), rv64.to_vector<double>(), 1e-6);  // var ~ 1e-2
  expect_near_vectors(rm.to_vector<double>(), rm64.to_vector<double>(), 1e-3);  // f32 ulp at 1e4
  expect_near_vectors(y.to_vector<double>(), reference_batch_norm(x, {1, 1}, {0, 0}, 1e-5), 1e-2);
}

TEST(BatchNorm, GradientsInTrainMode4d) {
  Generator gen(1);
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), /*training=*/true);
      },
      {randn({3, 4, 2, 3}, gen), randn({4}, gen), randn({4}, gen)});
}

TEST(BatchNorm, GradientsInTrainMode2d) {
  Generator gen(2);
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), /*training=*/true);
      },
      {randn({5, 3}, gen), randn({3}, gen), randn({3}, gen)});
}

TEST(BatchNorm, GradientsInTrainModeWithRunningStatsAndNoAffine) {
  Generator gen(4);
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        Tensor rm = Tensor::zeros({3}, DType::kF64), rv = Tensor::ones({3}, DType::kF64);
        return batch_norm(in[0], Tensor(), Tensor(), rm, rv, /*training=*/true);
      },
      {randn({2, 3, 4, 1}, gen)});
}

TEST(BatchNorm, GradientsInEvalMode) {
  Generator gen(5);
  for (Shape shape : {Shape{4, 3}, Shape{2, 3, 3, 2}}) {
    Tensor rm = randn({3}, gen, DType::kF64);
    Tensor rv = rand({3}, gen, DType::kF64);
    testing::expect_gradients_match(
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], rm, rv, /*training=*/false);
        },
        {randn(shape, gen), randn({3}, gen), randn({3}, gen)});
  }
}

TEST(BatchNorm, GradientOnlyForWeightWhenInputIsConstant) {
  Generator gen(6);
  Tensor x = randn({4, 2, 3, 3}, gen, DType::kF64);
  Tensor w = Tensor::ones({2}, DType::kF64);
  w.set_requires_grad(true);
  Tensor y = batch_norm(x, w, Tensor(), Tensor(), Tensor(), /*training=*/true);
  Generator gw(9);
  Tensor dy = randn(y.shape(), gw, DType::kF64);
  y.backward(dy);
  // grad_weight[c] = sum(dy * xhat) and y = xhat when w = 1, b = 0.
  std::vector<double> yv = y.to_vector<double>(), dv = dy.to_vector<double>();
  std::vector<double> expected(2, 0.0);
  for (size_t i = 0; i < yv.size(); ++i) expected[(i / 9) % 2] += yv[i] * dv[i];
  expect_near_vectors(w.grad().to_vector<double>(), expected, 1e-10);
  EXPECT_FALSE(x.grad().defined());
}

TEST(BatchNorm, ChannelMismatchNamesOpAndShapes) {
  Tensor x = Tensor::zeros({2, 4, 5, 5});
  try {
    batch_norm(x, Tensor::ones({3}), Tensor(), Tensor(), Tensor(), true);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("batch_norm"));
    EXPECT_THAT(e.what(), HasSubstr("weight of shape [3]"));
    EXPECT_THAT(e.what(), HasSubstr("[2, 4, 5, 5]"));
  }
  EXPECT_THAT([&] { batch_norm(x, Tensor(), Tensor::ones({4, 1}), Tensor(), Tensor(), true); },
              ::testing::ThrowsMessage<Error>(HasSubstr("bias of shape [4, 1]")));
  EXPECT_THAT([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({5}), Tensor::ones({5}), true); },
              ::testing::ThrowsMessage<Error>(HasSubstr("running_mean of shape [5]")));
}

TEST(BatchNorm, BadInputs) {
  EXPECT_THAT([] { batch_norm(Tensor::zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
              ::testing::ThrowsMessage<Error>(HasSubstr("batch_norm: input of shape [4]")));
  EXPECT_THAT(
      [] { batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
      ::testing::ThrowsMessage<Error>(HasSubstr("more than 1 value per channel")));
  EXPECT_THAT(
      [] { batch_norm(Tensor::zeros({2, 3}), Tensor(), Tensor(), Tensor(), Tensor(), false); },
      ::testing::ThrowsMessage<Error>(HasSubstr("eval mode needs running_mean")));
  EXPECT_THAT(
      [] {
        batch_norm(Tensor::zeros({2, 3}), Tensor::ones({3}, DType::kF64), Tensor(), Tensor(),
                   Tensor(), true);
      },
      ::testing::ThrowsMessage<Error>(
          HasSubstr("batch_norm: weight of dtype f64 for an input of dtype f32 (expected f32)")));
  EXPECT_THAT(
      [] {
        batch_norm(Tensor::zeros({2, 3}, DType::kI32), Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("unsupported dtype i32")));
  EXPECT_THAT(
      [] {
        Tensor strided = Tensor::zeros({3, 2}).select(1, 0);  // [3] with stride 2
        batch_norm(Tensor::zeros({2, 3}), Tensor(), Tensor(), strided, Tensor::ones({3}), true);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("running_mean must be contiguous")));
  EXPECT_THAT(
      [] { batch_norm(Tensor::zeros({2, 3}), Tensor(), Tensor(), Tensor::zeros({3}), Tensor(), true); },
      ::testing::ThrowsMessage<Error>(HasSubstr("both defined or both undefined")));
}

}  // namespace
}  // namespace ompq
