// Module: PyTorch-style names, train/eval, state_dict round trips through safetensors files, and
// strict loading that reports every bad name and changes nothing when it fails.
#include "layers/module.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pooling.h"
#include "layers/sequential.h"

namespace ompq::nn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// features = Sequential(Conv2d(2, 4, 3, bias=False), BatchNorm2d(4), ReLU(),
//                       AdaptiveAvgPool2d(1)), flatten, fc = Linear(4, 3): names as torchvision's.
class TinyNet : public Module {
 public:
  explicit TinyNet(uint64_t seed = 0) {
    Generator gen(seed);
    features = register_module(
        "features", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                        std::make_shared<Conv2d>(2, 4, std::array<int64_t, 2>{3, 3}, Conv2dParams{},
                                                 false, gen),
                        std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
                        std::make_shared<AdaptiveAvgPool2d>(std::array<int64_t, 2>{1, 1})}));
    flatten = register_module("flatten", std::make_shared<Flatten>());
    fc = register_module("fc", std::make_shared<Linear>(4, 3, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    return fc->forward(flatten->forward(features->forward(x)));
  }

  std::shared_ptr<Sequential> features;
  std::shared_ptr<Flatten> flatten;
  std::shared_ptr<Linear> fc;
};

std::vector<std::string> names(const NamedTensors& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.first);
  return out;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / (std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(ModuleTest, NamesFollowPyTorch) {
  TinyNet net;
  EXPECT_THAT(names(net.named_parameters()),
              ElementsAre("features.0.weight", "features.1.weight", "features.1.bias", "fc.weight",
                          "fc.bias"));
  EXPECT_THAT(names(net.named_buffers()),
              ElementsAre("features.1.running_mean", "features.1.running_var",
                          "features.1.num_batches_tracked"));
  std::vector<std::string> modules;
  for (const auto& [name, m] : net.named_modules()) modules.push_back(name);
  EXPECT_THAT(modules, ElementsAre("features", "features.0", "features.1", "features.2",
                                   "features.3", "flatten", "fc"));
  EXPECT_EQ(net.parameters().size(), 5u);
  for (const Tensor& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  for (const auto& [name, b] : net.named_buffers()) EXPECT_FALSE(b.requires_grad()) << name;
}

TEST(ModuleTest, StateDictHoldsParametersAndBuffersWithTorchDtypes) {
  TinyNet net;
  TensorMap state = net.state_dict();
  EXPECT_EQ(state.size(), 8u);
  const Tensor& tracked = state.at("features.1.num_batches_tracked");
  EXPECT_EQ(tracked.dtype(), DType::kI64);
  EXPECT_EQ(tracked.shape(), Shape{});
  EXPECT_EQ(state.at("features.0.weight").shape(), (Shape{4, 2, 3, 3}));
  EXPECT_EQ(state.at("features.1.running_var").to_vector<float>(),
            (std::vector<float>{1, 1, 1, 1}));
  // The entries share data with the module.
  net.fc->bias().detach().fill_(5.0);
  EXPECT_EQ(state.at("fc.bias").to_vector<float>(), (std::vector<float>{5, 5, 5}));
}

TEST(ModuleTest, TrainEvalPropagatesToChildren) {
  TinyNet net;
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  for (const auto& [name, m] : net.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  net.train();
  for (const auto& [name, m] : net.named_modules()) EXPECT_TRUE(m->is_training()) << name;
}

TEST(ModuleTest, SaveLoadRoundTripThroughFile) {
  TinyNet a(1);
  // Change the buffers too: run a training forward.
  a.forward(randn({2, 2, 5, 5}));
  EXPECT_EQ(a.state_dict().at("features.1.num_batches_tracked").item<int64_t>(), 1);
  std::string path = temp_path("tinynet.safetensors");
  ASSERT_TRUE(a.save(path, {{"epoch", "7"}}).ok());

  TinyNet b(2);
  ASSERT_NE(b.fc->weight().to_vector<float>(), a.fc->weight().to_vector<float>());
  absl::Status status = b.load(path);
  ASSERT_TRUE(status.ok()) << status;
  TensorMap sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [name, t] : sa) {
    EXPECT_EQ(sb.at(name).to_vector<double>(), t.to_vector<double>()) << name;
  }
  // Loaded models compute the same.
  a.eval();
  b.eval();
  Tensor x = randn({1, 2, 4, 4});
  EXPECT_EQ(a.forward(x).to_vector<float>(), b.forward(x).to_vector<float>());
  std::filesystem::remove(path);
}

TEST(ModuleTest, StrictLoadListsEveryBadNameAndChangesNothing) {
  TinyNet net(3);
  TensorMap before = net.state_dict();
  std::vector<std::vector<double>> values;
  for (const auto& [name, t] : before) values.push_back(t.clone().to_vector<double>());

  TensorMap state = TinyNet(4).state_dict();
  state.erase("fc.bias");
  state.erase("features.1.running_mean");
  state["fc.extra"] = Tensor::zeros({1});
  state["head.weight"] = Tensor::zeros({1});
  state["fc.weight"] = Tensor::zeros({3, 5});                                // wrong shape
  state["features.1.num_batches_tracked"] = Tensor::zeros({}, DType::kF32);  // wrong dtype

  absl::Status status = net.load_state_dict(state);
  ASSERT_FALSE(status.ok());
  std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("nothing was loaded"));
  EXPECT_THAT(message, HasSubstr("2 missing: fc.bias, features.1.running_mean"));
  EXPECT_THAT(message, HasSubstr("2 unexpected: fc.extra, head.weight"));
  EXPECT_THAT(message,
              HasSubstr("2 mismatched: fc.weight (checkpoint: [3, 5] f32, model: [3, 4] f32), "
                        "features.1.num_batches_tracked (checkpoint: [] f32, model: [] i64)"));
  // Not one value changed, including those whose entries were fine.
  size_t i = 0;
  for (const auto& [name, t] : net.state_dict())
    EXPECT_EQ(t.to_vector<double>(), values[i++]) << name;
}

TEST(ModuleTest, NonStrictLoadIgnoresMissingAndUnexpectedButNotMismatched) {
  TinyNet net(3);
  TinyNet other(4);
  TensorMap state = {{"fc.bias", other.fc->bias()}, {"unused", Tensor::zeros({2})}};
  ASSERT_TRUE(net.load_state_dict(state, /*strict=*/false).ok());
  EXPECT_EQ(net.fc->bias().to_vector<float>(), other.fc->bias().to_vector<float>());
  EXPECT_NE(net.fc->weight().to_vector<float>(), other.fc->weight().to_vector<float>());

  state["fc.weight"] = Tensor::zeros({4, 4});
  absl::Status status = net.load_state_dict(state, /*strict=*/false);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("1 mismatched: fc.weight"));
}

TEST(ModuleTest, LoadErrorsNameTheFile) {
  TinyNet net;
  std::string missing = temp_path("absent.safetensors");
  absl::Status status = net.load(missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr(missing));

  std::string path = temp_path("partial.safetensors");
  ASSERT_TRUE(save_safetensors(path, {{"fc.bias", Tensor::zeros({3})}}).ok());
  status = net.load(path);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_THAT(std::string(status.message()), HasSubstr("7 missing"));
  std::filesystem::remove(path);
}

TEST(ModuleTest, ZeroGradDropsGradients) {
  Linear fc(3, 2);
  Tensor loss = fc.forward(Tensor::ones({1, 3})).flatten().select(0, 0);
  loss.backward();
  ASSERT_TRUE(fc.weight().grad().defined());
  fc.zero_grad();
  EXPECT_FALSE(fc.weight().grad().defined());
  EXPECT_FALSE(fc.bias().grad().defined());
}

TEST(ModuleTest, ToSameDeviceKeepsHandles) {
  Linear fc(3, 2);
  Tensor w = fc.weight();
  fc.to(Device::cpu());
  EXPECT_TRUE(fc.weight().same(w));
  EXPECT_EQ(fc.named_parameters()[0].second.storage(), w.storage());
}

// A module that registers what the test asks for.
class Registrar : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
};

TEST(ModuleTest, RegistrationRejectsBadNames) {
  Registrar m;
  m.register_parameter("w", Tensor::zeros({2}));
  EXPECT_THAT([&] { m.register_buffer("w", Tensor::zeros({2})); },
              ::testing::ThrowsMessage<Error>(HasSubstr("\"w\" is already registered")));
  EXPECT_THAT([&] { m.register_parameter("a.b", Tensor::zeros({2})); },
              ::testing::ThrowsMessage<Error>(HasSubstr("invalid name \"a.b\"")));
  EXPECT_THAT([&] { m.register_parameter("", Tensor::zeros({2})); },
              ::testing::ThrowsMessage<Error>(HasSubstr("invalid name")));
  EXPECT_THAT([&] { m.register_parameter("u", Tensor()); },
              ::testing::ThrowsMessage<Error>(HasSubstr("\"u\" is undefined")));
  EXPECT_THAT([&] { m.register_module("c", std::shared_ptr<Module>()); },
              ::testing::ThrowsMessage<Error>(HasSubstr("\"c\" is null")));
  Tensor leaf = Tensor::ones({2}).set_requires_grad(true);
  Tensor computed = leaf.clone();
  EXPECT_THAT([&] { m.register_parameter("p", computed); },
              ::testing::ThrowsMessage<Error>(HasSubstr("detach() it first")));
}

}  // namespace
}  // namespace ompq::nn
