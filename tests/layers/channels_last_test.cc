// Whole networks in channels_last (Model::set_channels_last): every convolution of ResNet-20,
// narrow ResNets with basic and bottleneck blocks and MobileNetV2 sees a channels_last input and
// gets a channels_last gradient back, with no layer in between falling back to NCHW; logits, loss,
// parameter gradients and running statistics equal the NCHW run's (in f64), in train and eval
// mode. bf16 inference with low-precision activations (AutocastActivations::kLowPrecision):
// one conversion at the input, where the first convolution casts the f32 images, every later
// convolution gets the low-precision output of the layers before it, and the logits come back in
// f32, close to those of the same autocast with f32 activations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/softmax.h"
#include "core/ops/conv.h"
#include "core/random.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"

namespace ompq::nn {
namespace {

// channels_last, or a layout that cannot tell (1x1 planes or one channel: the same memory).
bool is_channels_last_memory(const Tensor& t) {
  return is_channels_last(t) ||
         (t.is_contiguous() && (t.size(1) == 1 || t.size(2) * t.size(3) == 1));
}

struct LayoutLog {
  int64_t inputs = 0, nchw_inputs = 0, low_precision_inputs = 0, grads = 0, nchw_grads = 0;
};

// Installed with Conv2d::set_replacement: runs the layer's own convolution and counts the layouts
// (and low-precision dtypes) of its input and the layouts of the gradient that reaches its output.
class LayoutProbe : public Module {
 public:
  LayoutProbe(const Conv2d* conv, LayoutLog* log) : conv_(conv), log_(log) {}

  Tensor forward(const Tensor& x) override {
    ++log_->inputs;
    if (!is_channels_last_memory(x)) ++log_->nchw_inputs;
    if (x.dtype() == DType::kBF16 || x.dtype() == DType::kF16) ++log_->low_precision_inputs;
    Tensor y = conv2d(x, conv_->weight(), conv_->bias(), conv_->params());
    LayoutLog* log = log_;
    return record(y.detach(), {y}, "LayoutProbeBackward", [log](const Tensor& grad) {
      ++log->grads;
      if (!is_channels_last_memory(grad)) ++log->nchw_grads;
      return std::vector<Tensor>{grad};
    });
  }

 private:
  const Conv2d* conv_;
  LayoutLog* log_;
};

void install_probes(Model& model, LayoutLog* log) {
  for (const QuantizableLayer& layer : model.quantizable_layers()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(layer.module)) {
      conv->set_replacement(std::make_shared<LayoutProbe>(conv.get(), log));
    }
  }
}

// max |actual - expected| over max(max |expected|, floor).
double max_relative_error(const Tensor& actual, const Tensor& expected, double floor = 0) {
  EXPECT_EQ(actual.shape(), expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(a[i] - e[i]));
    max_ref = std::max(max_ref, std::abs(e[i]));
  }
  return std::isnan(max_diff) ? INFINITY : max_diff / std::max(max_ref, floor);
}

// Converts every floating parameter and buffer of `model` to f64 in place (the handles that
// layers hold see the new data).
void to_f64(Module& model) {
  NamedTensors tensors = model.named_parameters();
  for (auto& entry : model.named_buffers()) tensors.push_back(entry);
  for (auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    Tensor d = t.detach().to(DType::kF64).contiguous();
    TensorImpl* impl = t.unsafe_impl();
    impl->storage = d.storage();
    impl->offset = d.offset();
    impl->strides = d.strides();
    impl->dtype = DType::kF64;
  }
}

struct ModelCase {
  const char* name;
  std::function<std::shared_ptr<Model>(Generator&)> make;
  Shape input;
};

// A narrow two-stage ResNet (f64 convolutions run direct loops: full-width ones would be slow).
std::shared_ptr<Model> narrow_resnet(ResNetConfig::Block block, bool small_stem, Generator& gen) {
  ResNetConfig config;
  config.block = block;
  config.blocks = {1, 2};
  config.planes = {8, 16};
  config.stem_channels = 8;
  config.small_stem = small_stem;
  config.num_classes = 10;
  return std::make_shared<ResNet>(config, gen);
}

const ModelCase kCases[] = {
    {"resnet20", [](Generator& gen) { return resnet20(10, gen); }, {4, 3, 8, 8}},
    // ImageNet stem (7x7/2 conv, 3x3/2 max pool) and basic blocks, as ResNet-18.
    {"basic_resnet",
     [](Generator& gen) { return narrow_resnet(ResNetConfig::Block::kBasic, false, gen); },
     {4, 3, 32, 32}},
    // Bottleneck blocks with projection shortcuts, as ResNet-50.
    {"bottleneck_resnet",
     [](Generator& gen) { return narrow_resnet(ResNetConfig::Block::kBottleneck, true, gen); },
     {4, 3, 8, 8}},
    {"mobilenet_v2",
     [](Generator& gen) {
       MobileNetV2Options options;
       options.num_classes = 10;
       options.width_mult = 0.25;
       options.dropout = 0.0;
       return std::make_shared<MobileNetV2>(options, gen);
     },
     {4, 3, 32, 32}},
};

// Names the case in test listings.
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

class ChannelsLastModelTest : public ::testing::TestWithParam<std::tuple<ModelCase, bool>> {};

TEST_P(ChannelsLastModelTest, EveryConvRunsChannelsLastAndResultsMatchNchw) {
  const auto& [c, training] = GetParam();
  // Two copies of the same model (same seed), one switched to channels_last.
  Generator gen_nchw(5), gen_cl(5), data(6);
  std::shared_ptr<Model> nchw = c.make(gen_nchw), cl = c.make(gen_cl);
  to_f64(*nchw);
  to_f64(*cl);
  cl->set_channels_last(true);
  EXPECT_TRUE(cl->channels_last());
  EXPECT_FALSE(nchw->channels_last());
  LayoutLog nchw_log, cl_log;
  install_probes(*nchw, &nchw_log);
  install_probes(*cl, &cl_log);
  const Tensor x = randn(c.input, data, DType::kF64);
  std::vector<int64_t> classes(c.input[0]);
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = static_cast<int64_t>(i % 10);
  const Tensor labels = Tensor::from_vector(classes, {c.input[0]});

  std::vector<Tensor> logits, losses;
  for (const auto& model : {nchw, cl}) {
    model->train(training);
    Tensor y = model->forward(x);
    Tensor loss = cross_entropy(y, labels);
    loss.backward();
    logits.push_back(y);
    losses.push_back(loss);
  }
  EXPECT_EQ(cl_log.nchw_inputs, 0) << "of " << cl_log.inputs << " conv inputs";
  EXPECT_EQ(cl_log.nchw_grads, 0) << "of " << cl_log.grads << " conv output gradients";
  EXPECT_EQ(cl_log.inputs, static_cast<int64_t>(cl->quantizable_layers().size()) - 1);
  EXPECT_EQ(cl_log.grads, cl_log.inputs);
  // The probe can fail: the NCHW model's convs see NCHW tensors.
  EXPECT_GT(nchw_log.nchw_inputs, 0);

  // f64 throughout, so that only the summation orders differ; a layout mistake would show as an
  // O(1) error. Train-mode BN over the few values per channel of the last stages (4 here)
  // amplifies rounding differences (f32 runs differ by percents), hence the looser train bound.
  // Some values are 0 in exact arithmetic (the mean of a conv over BN-normalized channels; the
  // bias gradient of a BN whose output reaches the next train-mode BN through linear layers
  // only): the floor keeps their rounding noise from counting as relative error.
  const double tol = training ? 1e-6 : 1e-9, noise_floor = 1e-6;
  EXPECT_LE(max_relative_error(logits[1], logits[0]), tol);
  EXPECT_LE(max_relative_error(losses[1], losses[0]), tol);
  const NamedTensors params_nchw = nchw->named_parameters(), params_cl = cl->named_parameters();
  ASSERT_EQ(params_nchw.size(), params_cl.size());
  for (size_t i = 0; i < params_nchw.size(); ++i) {
    ASSERT_TRUE(params_cl[i].second.grad().defined()) << params_cl[i].first;
    EXPECT_LE(
        max_relative_error(params_cl[i].second.grad(), params_nchw[i].second.grad(), noise_floor),
        tol)
        << "gradient of " << params_cl[i].first;
  }
  const NamedTensors buffers_nchw = nchw->named_buffers(), buffers_cl = cl->named_buffers();
  for (size_t i = 0; i < buffers_nchw.size(); ++i) {
    if (!is_floating(buffers_nchw[i].second.dtype())) continue;
    EXPECT_LE(max_relative_error(buffers_cl[i].second, buffers_nchw[i].second, noise_floor), tol)
        << buffers_cl[i].first;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, ChannelsLastModelTest,
    ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Bool()),
    [](const ::testing::TestParamInfo<ChannelsLastModelTest::ParamType>& info) {
      return std::string(std::get<0>(info.param).name) +
             (std::get<1>(info.param) ? "_train" : "_eval");
    });

class LowPrecisionInferenceTest : public ::testing::TestWithParam<std::tuple<ModelCase, DType>> {};

TEST_P(LowPrecisionInferenceTest, OnlyTheFirstConvolutionSeesF32) {
  const auto& [c, dtype] = GetParam();
  Generator gen(5), data(6);
  std::shared_ptr<Model> model = c.make(gen);
  model->set_channels_last(true);
  model->eval();
  LayoutLog log;
  install_probes(*model, &log);
  NoGradGuard no_grad;
  const Tensor x = randn(c.input, data);
  // The reference is the same autocast with f32 activations, so that the difference is the
  // rounding of the activations alone.
  Tensor f32_activations;
  {
    AutocastGuard autocast(dtype);
    f32_activations = model->forward(x);
  }
  EXPECT_EQ(log.low_precision_inputs, 0);
  log = LayoutLog();
  Tensor low;
  {
    AutocastGuard autocast(dtype, AutocastActivations::kLowPrecision);
    low = model->forward(x);
  }
  EXPECT_EQ(log.inputs, static_cast<int64_t>(model->quantizable_layers().size()) - 1);
  EXPECT_EQ(log.low_precision_inputs, log.inputs - 1);
  EXPECT_EQ(log.nchw_inputs, 0);
  EXPECT_EQ(low.dtype(), DType::kF32);
  // Every layer's output is rounded once more (2^-9 relative).
  EXPECT_LE(max_relative_error(low, f32_activations), 3e-2);
}

// bf16 only: f16 (whose kernels core/low_precision_activation_test.cc checks op by op) moves the
// random-init MobileNetV2's logits by 10-12% whichever way its activations are stored, which says
// more about f16's range against that untrained network than about the layers.
INSTANTIATE_TEST_SUITE_P(
    Models, LowPrecisionInferenceTest,
    ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Values(DType::kBF16)),
    [](const ::testing::TestParamInfo<LowPrecisionInferenceTest::ParamType>& info) {
      return std::string(std::get<0>(info.param).name) + "_" + dtype_name(std::get<1>(info.param));
    });

TEST(ChannelsLastModels, SwitchOffKeepsNchwAndChannelsLastInputIsTakenAsItIs) {
  Generator gen(7), data(8);
  auto model = resnet20(10, gen);
  LayoutLog log;
  install_probes(*model, &log);
  model->eval();
  NoGradGuard no_grad;
  const Tensor x = randn({2, 3, 8, 8}, data);
  Tensor nchw = model->forward(x);
  EXPECT_EQ(log.nchw_inputs, log.inputs);
  // A channels_last input runs channels_last whatever the switch says.
  const Tensor x_cl = x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  LayoutLog before = log;
  Tensor cl = model->forward(x_cl);
  EXPECT_EQ(log.nchw_inputs, before.nchw_inputs);
  EXPECT_LE(max_relative_error(cl, nchw), 1e-4);
}

}  // namespace
}  // namespace ompq::nn
