// Quantized layers and whole-model quantization: QConv2d/QLinear against their definition, the
// in-place swap of a model's layers by name with per-layer bits, BN folding pairs, quantizer state
// in the state_dict, model-wide switches, gradients through a quantized model, and bad configs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/linalg.h"
#include "core/functional/reduce.h"
#include "core/functional/softmax.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/quant/mse_range.h"
#include "layers/quant/quantize_model.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

void randomize_batch_norm(BatchNorm& bn, Generator& gen) {
  NoGradGuard no_grad;
  const int64_t c = bn.num_features();
  Tensor(bn.running_mean()).copy_(ops::mul(randn({c}, gen), 0.1));
  Tensor(bn.running_var()).copy_(ops::add(rand({c}, gen), 0.5));
  Tensor(bn.weight()).copy_(ops::add(rand({c}, gen), 0.5));
  Tensor(bn.bias()).copy_(ops::mul(randn({c}, gen), 0.1));
}

// Every BatchNorm of a model gets non-trivial statistics, so that folding matters.
void randomize_batch_norms(const Module& model, Generator& gen) {
  for (const auto& [name, module] : model.named_modules()) {
    if (auto bn = std::dynamic_pointer_cast<BatchNorm>(module)) randomize_batch_norm(*bn, gen);
  }
}

TEST(QConv2d, IsTheConvolutionOfQuantizedInputAndFoldedQuantizedWeight) {
  Generator gen(1);
  Conv2dParams p;
  p.padding = {1, 1};
  auto conv = std::make_shared<Conv2d>(4, 6, std::array<int64_t, 2>{3, 3}, p, false, gen);
  auto bn = std::make_shared<BatchNorm2d>(6);
  randomize_batch_norm(*bn, gen);
  auto q = std::make_shared<QConv2d>(*conv, qat_layer_config(4, 8), bn);
  EXPECT_TRUE(bn->folded());
  Tensor x = randn({2, 4, 5, 5}, gen);
  Tensor y = q->forward(x);
  // By hand: HAWQ-V3 scales from the data and the folded weight.
  FoldedWeights f = fold_batch_norm(conv->weight(), conv->bias(), *bn);
  const ChannelRange xr = channel_range(x, std::nullopt), wr = channel_range(f.weight, 0);
  QuantSpec a = qat_activation_spec(8), w = qat_weight_spec(4);
  RangeParams ap = params_from_range(xr.min, xr.max, a), wp = params_from_range(wr.min, wr.max, w);
  a.scale = Tensor::scalar(ap.scale[0]);
  w.scale = Tensor::from_vector(wp.scale, {6}).to(DType::kF32);
  Tensor expected = conv2d(fake_quantize(x, a), fake_quantize(f.weight, w), f.bias, p);
  EXPECT_EQ(y.to_vector<float>(), expected.to_vector<float>());
  // Installed in the conv, the conv's forward runs it.
  conv->set_replacement(q);
  q->input_quantizer()->set_frozen(true);
  EXPECT_EQ(conv->forward(x).to_vector<float>(), expected.to_vector<float>());
  EXPECT_THAT([&] { conv->set_replacement(q); },
              ThrowsMessage<Error>(HasSubstr("Conv2d: the layer is already replaced")));
}

TEST(QLinear, PtqRecipeWithLearnedInputStep) {
  Generator gen(2);
  auto fc = std::make_shared<Linear>(8, 3, true, gen);
  auto q = std::make_shared<QLinear>(*fc, ptq_layer_config(3, 4));
  fc->set_replacement(q);
  Tensor x = ops::relu(randn({5, 8}, gen)).set_requires_grad(true);
  Tensor y = fc->forward(x);
  Tensor expected = linear(fake_quantize(x, q->input_quantizer()->spec()),
                           fake_quantize(fc->weight(), q->weight_quantizer().spec()), fc->bias());
  EXPECT_EQ(y.to_vector<float>(), expected.to_vector<float>());
  // 3-bit weights: at most 8 distinct values per output row.
  std::vector<float> wq = q->quantized_weight().to_vector<float>();
  for (int o = 0; o < 3; ++o) {
    EXPECT_LE(std::set<float>(wq.begin() + o * 8, wq.begin() + (o + 1) * 8).size(), 8u);
  }
  // Gradients reach the input, the weight, the bias and the learned step size.
  sum(y).backward();
  ASSERT_TRUE(fc->weight().grad().defined());
  ASSERT_TRUE(fc->bias().grad().defined());
  ASSERT_TRUE(x.grad().defined());
  ASSERT_TRUE(q->input_quantizer()->spec().scale.grad().defined());
  // The module's parameters: the layer's own plus the step size, under "quant.".
  std::vector<std::string> names;
  for (const auto& [name, t] : fc->named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias", "quant.input_quantizer.scale"}));
}

std::map<std::string, int> bits_for(const Model& model, int first_last, int others) {
  std::map<std::string, int> bits;
  std::vector<QuantizableLayer> layers = model.quantizable_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    bits[layers[i].name] = (i == 0 || i + 1 == layers.size()) ? first_last : others;
  }
  return bits;
}

TEST(QuantizeModel, SwapsEveryNamedLayerAndFoldsItsBatchNorm) {
  Generator gen(3);
  auto model = resnet20(10, gen);
  randomize_batch_norms(*model, gen);
  std::map<std::string, int> bits = bits_for(*model, 8, 4);
  bits["layer2.0.conv1"] = 2;
  QuantizedLayers q = quantize_model(*model, bits);
  std::vector<std::string> expected_names;
  for (const QuantizableLayer& layer : model->quantizable_layers())
    expected_names.push_back(layer.name);
  ASSERT_EQ(q.size(), expected_names.size());
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(q[i].first, expected_names[i]);
    EXPECT_EQ(q[i].second->weight_quantizer().spec().bits, bits[q[i].first]) << q[i].first;
  }
  EXPECT_EQ(quantized_layers(*model), q);
  // Each conv took the batch norm registered after it; the classifier has none.
  std::map<std::string, std::string> pairs;
  for (const auto& [name, layer] : q) {
    if (!layer->folded_batch_norm()) continue;
    for (const auto& [bn_name, module] : model->named_modules()) {
      if (module == layer->folded_batch_norm()) pairs[name] = bn_name;
    }
  }
  EXPECT_EQ(pairs.size(), expected_names.size() - 1);
  EXPECT_EQ(pairs["conv1"], "bn1");
  EXPECT_EQ(pairs["layer1.0.conv2"], "layer1.0.bn2");
  EXPECT_EQ(pairs["layer2.0.downsample.0"], "layer2.0.downsample.1");
  // The quantizers' state is part of the model's.
  TensorMap state = model->state_dict();
  EXPECT_EQ(state.count("conv1.quant.weight_quantizer.scale"), 1u);
  EXPECT_EQ(state.count("fc.quant.input_quantizer.running_max"), 1u);
  EXPECT_EQ(state.at("layer2.0.conv1.quant.weight_quantizer.scale").shape(), (Shape{32}));
}

TEST(QuantizeModel, WithQuantizationOffItComputesTheFloatModel) {
  Generator gen(4);
  auto reference = resnet20(10, gen);
  randomize_batch_norms(*reference, gen);
  Generator other(5);
  auto model = resnet20(10, other);
  ASSERT_TRUE(model->load_state_dict(reference->state_dict()).ok());
  reference->eval();
  model->eval();
  quantize_model(*model, bits_for(*model, 8, 4));
  set_quantization_enabled(*model, false, false);
  Tensor x = randn({2, 3, 32, 32}, gen);
  std::vector<float> a = reference->forward(x).to_vector<float>(),
                     b = model->forward(x).to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * (1 + std::fabs(a[i])));
  // Quantized, the output moves but stays close at 8 bits everywhere.
  Generator third(6);
  auto eight = resnet20(10, third);
  ASSERT_TRUE(eight->load_state_dict(reference->state_dict()).ok());
  eight->eval();
  quantize_model(*eight, bits_for(*eight, 8, 8));
  std::vector<float> c = eight->forward(x).to_vector<float>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - c[i]) * (a[i] - c[i]);
    norm += a[i] * a[i];
  }
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(std::sqrt(diff / norm), 0.1);
}

TEST(QuantizeModel, GradientsReachWeightsAndFoldedBatchNormParameters) {
  Generator gen(7);
  auto model = resnet20(10, gen);
  randomize_batch_norms(*model, gen);
  model->eval();  // HAWQ-V3 fine-tunes with fixed (folded) batch norms
  quantize_model(*model, bits_for(*model, 8, 4));
  Tensor x = randn({2, 3, 32, 32}, gen);
  Tensor loss = cross_entropy(model->forward(x), Tensor::from_vector<int64_t>({1, 7}, {2}));
  loss.backward();
  for (const char* name : {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.bn1.weight",
                           "layer3.0.downsample.1.bias", "fc.weight", "fc.bias"}) {
    bool found = false;
    for (const auto& [n, p] : model->named_parameters()) {
      if (n != name) continue;
      found = true;
      ASSERT_TRUE(p.grad().defined()) << name;
      double norm = 0;
      for (float g : p.grad().to_vector<float>()) norm += std::fabs(g);
      EXPECT_GT(norm, 0.0) << name;
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST(QuantizeModel, PtqSchemeLeavesTheStemInputRealValued) {
  Generator gen(8);
  auto model = resnet20(10, gen);
  QuantizeOptions options;
  options.scheme = QuantScheme::kPtq;
  options.float_inputs = {"conv1"};
  options.input_bits = {{"fc", 8}};
  options.act_bits = 4;
  options.input_options.clip_gradient = false;
  QuantizedLayers q = quantize_model(*model, bits_for(*model, 4, 2), options);
  EXPECT_EQ(q.front().second->input_quantizer(), nullptr);
  EXPECT_EQ(q.back().second->input_quantizer()->spec().bits, 8);
  EXPECT_EQ(q[1].second->input_quantizer()->spec().bits, 4);
  EXPECT_EQ(q[1].second->input_quantizer()->range_method(), ActRange::kLearnedStep);
  EXPECT_EQ(q[1].second->weight_quantizer().range_method(), WeightRange::kMse);
  model->forward(randn({2, 3, 32, 32}, gen));
  std::set<std::string> names;
  for (const auto& [name, p] : model->named_parameters()) names.insert(name);
  EXPECT_EQ(names.count("layer1.0.conv1.quant.input_quantizer.scale"), 1u);
  EXPECT_EQ(names.count("conv1.quant.input_quantizer.scale"), 0u);
  // Values far outside the learned range still pass their gradient (unclipped estimator).
  ActivationQuantizer& a = *q[1].second->input_quantizer();
  Tensor probe = ops::add(ops::mul(rand({64}, gen), 10.0), 1000.0).set_requires_grad(true);
  sum(a.forward(probe)).backward();
  EXPECT_EQ(probe.grad().to_vector<float>(), std::vector<float>(64, 1.f));
}

TEST(QuantizeModel, MobileNetV2FoldsEveryConvIncludingDepthwise) {
  Generator gen(9);
  MobileNetV2Options options;
  options.num_classes = 10;
  options.width_mult = 0.25;
  options.small_input = true;
  MobileNetV2 model(options, gen);
  QuantizedLayers q = quantize_model(model, bits_for(model, 8, 3));
  int folded = 0;
  for (const auto& [name, layer] : q) folded += layer->folded_batch_norm() != nullptr;
  EXPECT_EQ(folded, static_cast<int>(q.size()) - 1);  // all but the classifier
  model.eval();
  EXPECT_EQ(model.forward(randn({1, 3, 32, 32}, gen)).shape(), (Shape{1, 10}));
}

TEST(QuantizeModel, FreezeAndBadConfigs) {
  Generator gen(10);
  auto model = resnet20(10, gen);
  quantize_model(*model, {{"conv1", 8}, {"fc", 8}});
  set_quantizers_frozen(*model, true);
  for (const auto& [name, layer] : quantized_layers(*model)) {
    EXPECT_TRUE(layer->input_quantizer()->frozen()) << name;
  }
  EXPECT_THAT(
      [&] {
        quantize_model(*model, {{"conv1", 4}});
      },
      ThrowsMessage<Error>(HasSubstr("quantize_model: layer \"conv1\" is already "
                                     "replaced")));
  EXPECT_THAT(
      [&] {
        quantize_model(*model, {{"layer9.conv", 4}});
      },
      ThrowsMessage<Error>(HasSubstr("\"layer9.conv\" is not a quantizable layer of the "
                                     "model (22 layers: conv1, layer1.0.conv1,")));
  EXPECT_THAT(
      [&] {
        quantize_model(*model, {{"layer1.0.conv1", 9}});
      },
      ThrowsMessage<Error>(HasSubstr("layer \"layer1.0.conv1\" has 9 weight bits "
                                     "(expected 2..8)")));
  QuantizeOptions options;
  options.input_bits = {{"layer1.0.conv2", 8}};
  EXPECT_THAT(
      [&] {
        quantize_model(*model, {{"layer1.0.conv1", 4}}, options);
      },
      ThrowsMessage<Error>(HasSubstr("input_bits names layer \"layer1.0.conv2\", which has "
                                     "no weight bits")));
  options.input_bits.clear();
  options.float_inputs = {"layer1.0.conv2"};
  EXPECT_THAT(
      [&] {
        quantize_model(*model, {{"layer1.0.conv1", 4}}, options);
      },
      ThrowsMessage<Error>(HasSubstr("float_inputs names layer")));
}

}  // namespace
}  // namespace ompq::nn
