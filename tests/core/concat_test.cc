// cat: values along several dims, f64 finite-difference gradients, and bad inputs.
#include "core/functional/concat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/autograd.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(Cat, ValuesAlongDim0And1) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector<float>({5, 6}, {1, 2});
  Tensor c = Tensor::from_vector<float>({7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor rows = cat({a, b}, 0);
  EXPECT_EQ(rows.shape(), (Shape{3, 2}));
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor cols = cat({a, c}, -1);
  EXPECT_EQ(cols.shape(), (Shape{2, 5}));
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{1, 2, 7, 8, 9, 3, 4, 10, 11, 12}));
}

TEST(Cat, NonContiguousAndEmptyInputs) {
  Tensor a = Tensor::arange(6).reshape({2, 3}).t();  // [3, 2], transposed strides
  Tensor empty = Tensor::zeros({0, 2});
  Tensor out = cat({empty, a, empty}, 0);
  EXPECT_EQ(out.shape(), (Shape{3, 2}));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Cat, GradientsAlongDims) {
  Generator gen(2);
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return cat(in, 0); },
      {randn({2, 3, 2}, gen), randn({1, 3, 2}, gen), randn({3, 3, 2}, gen)});
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return cat(in, 1); },
                                  {randn({2, 1, 2}, gen), randn({2, 4, 2}, gen)});
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return cat(in, 2); },
                                  {randn({2, 3, 2}, gen), randn({2, 3, 1}, gen)});
}

TEST(Cat, GradientOnlyForInputsThatRequireIt) {
  Tensor a = Tensor::ones({2, 2}, DType::kF64);
  a.set_requires_grad(true);
  Tensor b = Tensor::ones({2, 1}, DType::kF64);
  Tensor out = cat({a, b}, 1);
  out.backward(Tensor::arange(6, DType::kF64).reshape({2, 3}));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{0, 1, 3, 4}));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Cat, BadInputs) {
  EXPECT_THAT([] { cat({}, 0); },
              ThrowsMessage<Error>(HasSubstr("cat: expected a non-empty list")));
  EXPECT_THAT(
      [] {
        cat({Tensor::zeros({2, 3}), Tensor::zeros({3, 2})}, 0);
      },
      ThrowsMessage<Error>(
          HasSubstr("cat: tensor 1 of shape [3, 2] does not match tensor 0 of shape [2, 3]")));
  EXPECT_THAT(
      [] {
        cat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 1})}, 1);
      },
      ThrowsMessage<Error>(HasSubstr("tensor 1 of shape [2, 3, 1]")));
  EXPECT_THAT(
      [] {
        cat({Tensor::zeros({2}), Tensor::zeros({2}, DType::kF64)}, 0);
      },
      ThrowsMessage<Error>(HasSubstr("cat: dtype mismatch")));
  EXPECT_THAT(
      [] {
        cat({Tensor::zeros({2, 3})}, 2);
      },
      ThrowsMessage<Error>(HasSubstr("cat: dim 2 out of range")));
  EXPECT_THAT([] { cat({Tensor::scalar(1.0)}, 0); }, ThrowsMessage<Error>(HasSubstr("0-dim")));
}

}  // namespace
}  // namespace ompq
