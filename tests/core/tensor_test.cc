// Tensor basics: views and their errors, copies, dtype conversion (bf16/f16 rounding against
// PyTorch 1.13), printing, autograd through views and its rules, the pooled allocator, and the
// Philox random tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "core/philox.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using testing::expect_gradients_match;
using ::testing::HasSubstr;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// [2, 3, 4] holding 0..23.
Tensor iota234(DType dtype = DType::kF32) { return Tensor::arange(24, dtype).view({2, 3, 4}); }

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// ---- views
// ---------------------------------------------------------------------------------------

TEST(TensorView, ViewAndReshapeShareStorageAndInferMinusOne) {
  Tensor x = iota234();
  Tensor v = x.view({4, -1});
  EXPECT_EQ(v.shape(), (Shape{4, 6}));
  EXPECT_EQ(v.storage(), x.storage());
  EXPECT_EQ(x.reshape({-1}).shape(), (Shape{24}));
  EXPECT_EQ(x.view({2, -1, 2}).shape(), (Shape{2, 6, 2}));
  v.select(0, 1).fill_(-1);  // a write through the view is seen by x
  EXPECT_EQ(values(x)[6], -1.0f);
  EXPECT_EQ(values(x)[11], -1.0f);
  EXPECT_EQ(values(x)[12], 12.0f);
  EXPECT_EQ(x.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(x.flatten().shape(), (Shape{24}));
}

TEST(TensorView, ViewOfTransposedTensorIsRefusedButReshapeCopies) {
  Tensor x = iota234();
  Tensor t = x.transpose(1, 2);  // [2, 4, 3]
  EXPECT_THAT(error_of([&] { t.view({24}); }),
              HasSubstr("view: shape [24] is not compatible with the strides of a tensor of shape "
                        "[2, 4, 3]; use reshape()"));
  // Merging dims that stay contiguous is still a view.
  EXPECT_EQ(t.view({2, 4, 3}).storage(), x.storage());
  Tensor r = t.reshape({24});
  EXPECT_NE(r.storage(), x.storage());
  std::vector<float> want;
  for (int a = 0; a < 2; ++a)
    for (int c = 0; c < 4; ++c)
      for (int b = 0; b < 3; ++b) want.push_back(static_cast<float>(a * 12 + b * 4 + c));
  EXPECT_EQ(values(r), want);
}

TEST(TensorView, BadViewShapes) {
  Tensor x = iota234();
  EXPECT_THAT(error_of([&] {
                x.view({5, -1});
              }),
              HasSubstr("view: shape [5, -1] is invalid for 24 elements"));
  EXPECT_THAT(error_of([&] { x.view({-1, -1}); }), HasSubstr("only one dim may be -1"));
  EXPECT_THAT(error_of([&] { x.reshape({7}); }),
              HasSubstr("reshape: shape [7] is invalid for 24 elements"));
}

TEST(TensorView, PermuteAndTranspose) {
  Tensor x = iota234();
  Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  // p[c][a][b] == x[a][b][c]
  std::vector<float> pv = values(p);
  EXPECT_EQ(pv[3 * 6 + 1 * 3 + 2], 1 * 12 + 2 * 4 + 3);
  EXPECT_EQ(x.permute({-1, 0, 1}).shape(), p.shape());
  EXPECT_EQ(x.transpose(0, -1).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(values(x.transpose(0, 2).transpose(0, 2)), values(x));
  EXPECT_THAT(error_of([&] { x.permute({0, 0, 1}); }), HasSubstr("permute: dim 0 repeated"));
  EXPECT_THAT(error_of([&] {
                x.permute({0, 1});
              }),
              HasSubstr("permute: 2 dims given for a tensor of shape [2, 3, 4]"));
  EXPECT_THAT(error_of([&] { x.transpose(0, 3); }), HasSubstr("transpose: dim 3 out of range"));
}

TEST(TensorView, SliceWithStepsAndNegativeIndices) {
  Tensor x = Tensor::arange(10);
  EXPECT_EQ(values(x.slice(0, 2, 9, 3)), (std::vector<float>{2, 5, 8}));
  EXPECT_EQ(values(x.slice(0, -4, -1)), (std::vector<float>{6, 7, 8}));
  EXPECT_EQ(values(x.slice(0, -3, 100, 2)), (std::vector<float>{7, 9}));  // end clamped
  EXPECT_EQ(x.slice(0, 8, 3).numel(), 0);                                 // empty, not an error
  Tensor m = iota234().slice(2, 1, 4, 2);                                 // [2, 3, 2]
  EXPECT_EQ(m.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(m.strides(), (Shape{12, 4, 2}));
  EXPECT_EQ(values(m), (std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  EXPECT_EQ(values(iota234().slice(-2, -1, 3)), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_THAT(error_of([&] { x.slice(0, 0, 5, 0); }),
              HasSubstr("slice: step must be positive, got 0"));
}

TEST(TensorView, SelectSqueezeUnsqueeze) {
  Tensor x = iota234();
  EXPECT_EQ(values(x.select(1, -1)), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_EQ(x.select(2, 0).shape(), (Shape{2, 3}));
  EXPECT_THAT(error_of([&] { x.select(1, 3); }),
              HasSubstr("select: index 3 out of range for dim 1 of size 3"));
  Tensor u = x.unsqueeze(1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(u.squeeze(1).shape(), x.shape());
  EXPECT_EQ(x.squeeze(0).shape(), x.shape());  // size 2: unchanged, as in PyTorch
  EXPECT_EQ(u.storage(), x.storage());
}

TEST(TensorView, ExpandBroadcastsWithZeroStrides) {
  Tensor c = Tensor::from_vector<float>({1, 2, 3}, {3, 1});
  Tensor e = c.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  std::vector<float> ev = values(e);
  EXPECT_EQ(ev[0], 1.0f);
  EXPECT_EQ(ev[5], 2.0f);
  EXPECT_EQ(ev[12 + 11], 3.0f);
  EXPECT_EQ(c.expand({-1, 5}).shape(), (Shape{3, 5}));
  EXPECT_THAT(error_of([&] {
                c.expand({4, 4});
              }),
              HasSubstr("expand: cannot expand shape [3, 1] to [4, 4]"));
  EXPECT_THAT(error_of([&] { c.expand({4}); }),
              HasSubstr("expand: shape [4] has fewer dims than [3, 1]"));
}

TEST(TensorView, ContiguousAndClone) {
  Tensor x = iota234();
  EXPECT_TRUE(x.contiguous().same(x));  // already contiguous: the same tensor
  Tensor p = x.permute({1, 2, 0});
  Tensor c = p.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_EQ(values(c), values(p));
  Tensor k = x.clone();
  k.fill_(7);
  EXPECT_EQ(values(x)[5], 5.0f);  // the clone has its own storage
  EXPECT_EQ(values(k)[5], 7.0f);
}

// ---- dtype conversion
// ----------------------------------------------------------------------------

TEST(TensorDType, RoundTripsBetweenWideTypes) {
  Tensor x = Tensor::from_vector<float>({-3.75f, 0.1f, 1e30f, 7.0f}, {4});
  EXPECT_EQ(values(x.to(DType::kF64).to(DType::kF32)), values(x));
  EXPECT_EQ(x.to(DType::kF64).to_vector<double>()[1], static_cast<double>(0.1f));
  Tensor ints = Tensor::from_vector<int64_t>({-5, 0, 1 << 20, 123456789}, {4});
  EXPECT_EQ(ints.to(DType::kF64).to(DType::kI64).to_vector<int64_t>(), ints.to_vector<int64_t>());
  EXPECT_EQ(ints.to(DType::kI32).to_vector<int32_t>(),
            (std::vector<int32_t>{-5, 0, 1 << 20, 123456789}));
  // Float to integer truncates toward zero, as PyTorch does.
  EXPECT_EQ(Tensor::from_vector<float>({-2.7f, 2.7f}, {2}).to(DType::kI32).to_vector<int32_t>(),
            (std::vector<int32_t>{-2, 2}));
  EXPECT_EQ(Tensor::from_vector<uint8_t>({0, 255}, {2}).to(DType::kF32).to_vector<float>(),
            (std::vector<float>{0, 255}));
  EXPECT_EQ(Tensor::from_vector<int8_t>({-128, 127}, {2}).to(DType::kF64).to_vector<double>(),
            (std::vector<double>{-128, 127}));
}

template <typename Half>
std::vector<uint16_t> bits_of(const Tensor& x, DType dtype) {
  Tensor h = x.to(dtype);
  std::vector<uint16_t> out;
  for (int64_t i = 0; i < h.numel(); ++i) out.push_back(h.data<Half>()[i].bits);
  return out;
}

// Golden bits from PyTorch 1.13: torch.tensor(v, dtype=torch.float32).to(torch.bfloat16 /
// torch.float16).view(torch.int16). Cases: ties to even, just above a tie, subnormals of both
// formats, overflow to inf, -0, inf.
const std::vector<float> kRoundingInputs = {
    1.0f,           1.00390625f,    1.01171875f,      1.0039063f, -2.5f,      1e-40f,
    -1e-40f,        3.4e38f,        INFINITY,         -INFINITY,  -0.0f,      65504.0f,
    65519.0f,       65520.0f,       0x1p-24f,         0x1p-25f,   0x1.8p-24f, 0x1.8p-25f,
    1.00048828125f, 1.00146484375f, 6.103515625e-05f, 6.1e-5f,    1e-8f,      0.1f,
    3.14159f};

TEST(TensorDType, Bf16RoundsToNearestEvenLikePyTorch) {
  Tensor x =
      Tensor::from_vector<float>(kRoundingInputs, {static_cast<int64_t>(kRoundingInputs.size())});
  const std::vector<uint16_t> torch_bits = {0x3f80, 0x3f80, 0x3f82, 0x3f80, 0xc020, 0x0001, 0x8001,
                                            0x7f80, 0x7f80, 0xff80, 0x8000, 0x4780, 0x4780, 0x4780,
                                            0x3380, 0x3300, 0x33c0, 0x3340, 0x3f80, 0x3f80, 0x3880,
                                            0x3880, 0x322c, 0x3dcd, 0x4049};
  EXPECT_EQ(bits_of<bf16>(x, DType::kBF16), torch_bits);
  // Back to f32 exactly (torch: 1.015625, 9.183549615799121e-41, 3.140625).
  std::vector<float> back = values(x.to(DType::kBF16));
  EXPECT_EQ(back[2], 1.015625f);
  EXPECT_EQ(back[5], 9.183549615799121e-41f);
  EXPECT_EQ(back[24], 3.140625f);
  EXPECT_TRUE(std::signbit(back[10]));
  EXPECT_TRUE(std::isnan(values(Tensor::full({1}, NAN).to(DType::kBF16))[0]));
}

TEST(TensorDType, F16RoundsToNearestEvenLikePyTorch) {
  Tensor x =
      Tensor::from_vector<float>(kRoundingInputs, {static_cast<int64_t>(kRoundingInputs.size())});
  const std::vector<uint16_t> torch_bits = {0x3c00, 0x3c04, 0x3c0c, 0x3c04, 0xc100, 0x0000, 0x8000,
                                            0x7c00, 0x7c00, 0xfc00, 0x8000, 0x7bff, 0x7bff, 0x7c00,
                                            0x0001, 0x0000, 0x0002, 0x0001, 0x3c00, 0x3c02, 0x0400,
                                            0x03ff, 0x0000, 0x2e66, 0x4248};
  EXPECT_EQ(bits_of<f16>(x, DType::kF16), torch_bits);
  std::vector<float> back = values(x.to(DType::kF16));
  EXPECT_EQ(back[16], 1.1920928955078125e-07f);  // subnormal 2 * 2^-24
  EXPECT_EQ(back[21], 6.097555160522461e-05f);   // largest subnormal
  EXPECT_EQ(back[23], 0.0999755859375f);
  EXPECT_EQ(back[13], INFINITY);
  Tensor nan16 = Tensor::full({1}, NAN).to(DType::kF16);
  EXPECT_EQ(nan16.data<f16>()[0].bits, 0x7e00);  // torch's canonical f16 NaN
  EXPECT_TRUE(std::isnan(values(nan16)[0]));
}

TEST(TensorDType, EveryF16ValueSurvivesARoundTripThroughF32) {
  std::vector<uint16_t> all(1 << 16);
  std::iota(all.begin(), all.end(), 0);
  Tensor h = Tensor::empty({1 << 16}, DType::kF16);
  std::memcpy(h.data_ptr(), all.data(), all.size() * 2);
  Tensor back = h.to(DType::kF32).to(DType::kF16);
  int mismatches = 0;
  for (int i = 0; i < (1 << 16); ++i) {
    const bool is_nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff) != 0;
    if (!is_nan && back.data<f16>()[i].bits != i) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

// ---- printing
// ------------------------------------------------------------------------------------

TEST(TensorPrint, ShapeDtypeDeviceAndValues) {
  Tensor x = Tensor::from_vector<float>({1, 2.5f, -3, 1e-7f}, {2, 2});
  EXPECT_EQ(x.str(), "Tensor(shape=[2, 2], dtype=f32, device=cpu, values=[1, 2.5, -3, 1e-07])");
  std::ostringstream os;
  os << Tensor::arange(100, DType::kI64);
  EXPECT_THAT(os.str(), HasSubstr("shape=[100], dtype=i64"));
  EXPECT_THAT(os.str(), HasSubstr("29, 30, 31, ... (100 in all)"));
  x.set_requires_grad(true);
  EXPECT_THAT(x.str(), HasSubstr("requires_grad"));
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
}

// ---- autograd
// ------------------------------------------------------------------------------------

TEST(TensorGrad, GradientsFlowThroughEveryView) {
  const std::vector<std::pair<const char*, testing::TensorFn>> cases = {
      {"view",
       [](const std::vector<Tensor>& in) {
         return in[0].view({4, -1});
       }},
      {"reshape of a transpose",
       [](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).reshape({-1}); }},
      {"permute",
       [](const std::vector<Tensor>& in) {
         return in[0].permute({2, 0, 1});
       }},
      {"slice", [](const std::vector<Tensor>& in) { return in[0].slice(2, -3, 4, 2); }},
      {"select", [](const std::vector<Tensor>& in) { return in[0].select(1, -1); }},
      {"unsqueeze/squeeze",
       [](const std::vector<Tensor>& in) { return in[0].unsqueeze(1).squeeze(1) * 2.0; }},
      {"expand",
       [](const std::vector<Tensor>& in) {
         return in[0].slice(1, 0, 1).expand({2, 5, 4});
       }},
      {"flatten", [](const std::vector<Tensor>& in) { return in[0].flatten(1); }},
      {"contiguous", [](const std::vector<Tensor>& in) { return in[0].t().contiguous(); }},
      {"clone", [](const std::vector<Tensor>& in) { return in[0].clone() * in[0]; }},
      {"overlapping slices",
       [](const std::vector<Tensor>& in) { return in[0].slice(2, 0, 3) * in[0].slice(2, 1, 4); }},
  };
  Generator gen(5);
  Tensor x = randn({2, 3, 4}, gen, DType::kF64);
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    if (std::string(name) == "contiguous") {
      expect_gradients_match(fn, {randn({3, 5}, gen, DType::kF64)});
    } else {
      expect_gradients_match(fn, {x});
    }
  }
}

TEST(TensorGrad, ToDTypePassesTheGradientBackInTheInputDtype) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad(true);
  sum(x.to(DType::kF32) * 2.0).backward();
  EXPECT_EQ(x.grad().dtype(), DType::kF64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
}

TEST(TensorGrad, AccumulatesAcrossBackwardCallsAndPaths) {
  Tensor x = Tensor::from_vector<double>({1, -2}, {2});
  x.set_requires_grad(true);
  Tensor loss = sum(x * x);  // two paths into x within one graph
  loss.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, -4}));
  loss.backward();  // same graph again: adds
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, -8}));
  sum(x * 3.0).backward();  // a new graph: adds too
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{7, -5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(TensorGrad, NoGradGuardScopesAndNests) {
  Tensor x = Tensor::ones({2});
  x.set_requires_grad(true);
  EXPECT_TRUE(GradMode::enabled());
  {
    NoGradGuard outer;
    EXPECT_FALSE((x * 2.0).requires_grad());
    {
      NoGradGuard inner;
      EXPECT_FALSE(GradMode::enabled());
    }
    EXPECT_FALSE(GradMode::enabled());
    EXPECT_FALSE(x.view({2, 1}).requires_grad());
  }
  EXPECT_TRUE(GradMode::enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(TensorGrad, RequiresGradRules) {
  Tensor a = Tensor::ones({2});
  EXPECT_FALSE(a.requires_grad());
  EXPECT_TRUE(a.is_leaf());
  a.set_requires_grad(true);
  Tensor b = a * 2.0;
  EXPECT_TRUE(b.requires_grad());
  EXPECT_FALSE(b.is_leaf());
  EXPECT_EQ(b.grad_fn()->name(), "MulScalarBackward");
  EXPECT_FALSE(b.detach().requires_grad());
  EXPECT_EQ(b.detach().storage(), b.storage());
  EXPECT_THAT(error_of([&] { b.set_requires_grad(false); }),
              HasSubstr("set_requires_grad: only leaf tensors can change requires_grad"));
  EXPECT_THAT(error_of([] { Tensor::zeros({2}, DType::kI64).set_requires_grad(true); }),
              HasSubstr("only floating tensors can require grad (dtype is i64)"));
  EXPECT_THAT(error_of([] { Tensor::ones({2}).backward(); }),
              HasSubstr("backward: a gradient must be given for a tensor of shape [2]"));
  EXPECT_THAT(error_of([] { Tensor::ones({}).backward(); }),
              HasSubstr("backward: the tensor does not require grad and has no grad_fn"));
  EXPECT_THAT(error_of([&] { b.backward(Tensor::ones({3})); }),
              HasSubstr("backward: gradient of shape [3] for a tensor of shape [2]"));
}

// ---- allocator
// -----------------------------------------------------------------------------------

TEST(TensorAllocator, ReusesFreedBlocksAndAlignsTo64Bytes) {
  Allocator* alloc = cpu_allocator();
  { Tensor warm = Tensor::empty({12345}); }  // the block goes to the cache
  const int64_t before = alloc->stats().os_allocations;
  for (int i = 0; i < 5; ++i) {
    Tensor t = Tensor::empty({12345});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % kCpuAlignment, 0u);
  }
  EXPECT_EQ(alloc->stats().os_allocations, before);
  for (int64_t n : {1, 3, 17, 1000, 300001}) {
    Tensor t = Tensor::empty({n}, DType::kU8);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % kCpuAlignment, 0u) << n;
  }
  // Two live tensors need two blocks.
  Tensor a = Tensor::empty({777777}), b = Tensor::empty({777777});
  EXPECT_NE(a.data_ptr(), b.data_ptr());
}

// ---- random
// --------------------------------------------------------------------------------------

TEST(TensorRandom, SameSeedSameValuesAndTheStreamAdvances) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = rand({1000}, g1), b = rand({1000}, g2), c = rand({1000}, g3);
  EXPECT_EQ(values(a), values(b));
  EXPECT_NE(values(a), values(c));
  Tensor next = rand({1000}, g1);
  EXPECT_NE(values(next), values(a));
  EXPECT_EQ(g1.offset(), 2000u);
  // Two draws of n are one draw of 2n.
  Generator g4(42);
  std::vector<float> both = values(rand({2000}, g4));
  EXPECT_EQ(std::vector<float>(both.begin() + 1000, both.end()), values(next));
  // The stream is Philox's: element i is philox_uniform(seed, offset + i).
  EXPECT_EQ(values(a)[7], philox_uniform(42, 7));
}

TEST(TensorRandom, UniformRangeAndNormalMoments) {
  Generator gen(7);
  const int64_t n = 100000;
  Tensor u = Tensor::empty({n}, DType::kF64);
  ops::uniform_(u, -2.0, 3.0, gen);
  std::vector<double> uv = u.to_vector<double>();
  EXPECT_GE(*std::min_element(uv.begin(), uv.end()), -2.0);
  EXPECT_LT(*std::max_element(uv.begin(), uv.end()), 3.0);
  EXPECT_NEAR(mean(u).item<double>(), 0.5, 0.02);
  EXPECT_NEAR(var(u).item<double>(), 25.0 / 12, 0.03);
  Tensor z = randn({n}, gen, DType::kF64);
  EXPECT_NEAR(mean(z).item<double>(), 0.0, 0.015);
  EXPECT_NEAR(std::sqrt(var(z).item<double>()), 1.0, 0.015);
  Tensor shifted = Tensor::empty({n});
  ops::normal_(shifted, 5.0, 0.5, gen);
  EXPECT_NEAR(mean(shifted).item<float>(), 5.0, 0.01);
  EXPECT_NEAR(std::sqrt(var(shifted).item<float>()), 0.5, 0.01);
}

TEST(TensorRandom, ElementValueDoesNotDependOnLayout) {
  // Filling a permuted (non-contiguous) tensor gives the same logical values as a contiguous one.
  Generator g1(9), g2(9);
  Tensor contiguous = Tensor::empty({3, 4, 5});
  Tensor permuted = Tensor::empty({5, 3, 4}).permute({1, 2, 0});  // logical [3, 4, 5]
  ops::normal_(contiguous, 0, 1, g1);
  ops::normal_(permuted, 0, 1, g2);
  EXPECT_EQ(values(permuted), values(contiguous));
  // And a bf16 tensor holds the rounded f32 stream.
  Generator g3(9);
  Tensor half = Tensor::empty({3, 4, 5}, DType::kBF16);
  ops::normal_(half, 0, 1, g3);
  EXPECT_EQ(values(half), values(contiguous.to(DType::kBF16)));
}

TEST(TensorRandom, NormalDrawsNeverReuseUniformPositions) {
  // A normal value uses two stream positions; after an odd-sized draw it must not reuse the
  // last position of the previous draw.
  Generator gen(11);
  rand({3}, gen);
  Tensor z = randn({4}, gen, DType::kF64);
  EXPECT_GE(gen.offset(), 3u + 8u);
  // The first normal uses positions >= 3.
  const uint64_t first_pair = (gen.offset() - 8) / 2;
  EXPECT_GE(2 * first_pair, 3u);
  EXPECT_EQ(static_cast<float>(z.to_vector<double>()[0]), philox_normal(11, first_pair));
}

}  // namespace
}  // namespace ompq
