// The traced model graph: node counts, kinds and module paths of the zoo's models, the edges of a
// residual block, the quantizable layers with their batch norm and activation, a model left as it
// was, the live values of a later forward, and a wrong input shape.
#include "layers/graph/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "layers/models/fashion_cnn.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/quant/quantize_model.h"

namespace ompq::graph {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::map<OpKind, int> count_kinds(const Graph& g) {
  std::map<OpKind, int> counts;
  for (const Node& n : g.nodes) ++counts[n.kind];
  return counts;
}

// The node that `module` ran of `kind` (the only one expected).
NodeId find_node(const Graph& g, OpKind kind, const std::string& module) {
  NodeId found = -1;
  for (NodeId n = 0; n < static_cast<NodeId>(g.nodes.size()); ++n) {
    if (g.nodes[n].kind == kind && g.nodes[n].module == module) {
      EXPECT_EQ(found, -1) << "two " << op_kind_name(kind) << " nodes in " << module;
      found = n;
    }
  }
  EXPECT_NE(found, -1) << "no " << op_kind_name(kind) << " node in " << module;
  return found;
}

TEST(Graph, ResNet18NodesAndPaths) {
  Generator gen(1);
  auto model = nn::resnet18(1000, false, gen);
  const Graph g = trace(*model, {3, 224, 224});
  std::map<OpKind, int> kinds = count_kinds(g);
  EXPECT_EQ(kinds[OpKind::kInput], 1);
  EXPECT_EQ(kinds[OpKind::kConv2d], 20);  // stem, 16 block convs, 3 projections
  EXPECT_EQ(kinds[OpKind::kBatchNorm], 20);
  EXPECT_EQ(kinds[OpKind::kAdd], 8);    // one per BasicBlock
  EXPECT_EQ(kinds[OpKind::kRelu], 17);  // stem, 2 per block
  EXPECT_EQ(kinds[OpKind::kMaxPool2d], 1);
  EXPECT_EQ(kinds[OpKind::kAdaptiveAvgPool2d], 1);
  EXPECT_EQ(kinds[OpKind::kReshape], 1);
  EXPECT_EQ(kinds[OpKind::kLinear], 1);
  EXPECT_EQ(kinds[OpKind::kConstant], 0);
  EXPECT_EQ(g.nodes.size(), 70u);
  EXPECT_EQ(g.value(g.output).shape, (Shape{1, 1000}));
  const Node& stem = g.nodes[1];
  EXPECT_EQ(stem.kind, OpKind::kConv2d);
  EXPECT_EQ(stem.module, "conv1");
  EXPECT_THAT(stem.parameters, ElementsAre("conv1.weight", ""));
  EXPECT_EQ(stem.attributes.conv.stride[0], 2);
  EXPECT_EQ(g.value(stem.output).shape, (Shape{1, 64, 112, 112}));
  const Node& bn = g.nodes[2];
  EXPECT_EQ(bn.kind, OpKind::kBatchNorm);
  EXPECT_THAT(bn.parameters,
              ElementsAre("bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"));
  EXPECT_FALSE(g.value(bn.output).materialized);  // fused with the ReLU after it
  EXPECT_EQ(g.nodes[3].kind, OpKind::kRelu);
  EXPECT_EQ(g.nodes[3].module, "");
  EXPECT_EQ(g.nodes[find_node(g, OpKind::kAdd, "layer2.0")].module, "layer2.0");
  EXPECT_THAT(g.nodes[g.producer(g.output).output].parameters, ElementsAre("fc.weight", "fc.bias"));
}

// layer2.0: conv1 -> bn1 -> relu -> conv2 -> bn2 -> add(bn2, downsample) -> relu, with the
// projection reading the block input.
TEST(Graph, EdgesOfAResidualBlock) {
  Generator gen(2);
  auto model = nn::resnet18(10, true, gen);
  const Graph g = trace(*model, {3, 32, 32});
  const Node& conv1 = g.nodes[find_node(g, OpKind::kConv2d, "layer2.0.conv1")];
  const Node& projection = g.nodes[find_node(g, OpKind::kConv2d, "layer2.0.downsample.0")];
  EXPECT_EQ(conv1.inputs, projection.inputs);  // both read the block input
  const ValueId block_input = conv1.inputs[0];
  EXPECT_EQ(g.producer(block_input).kind, OpKind::kRelu);
  EXPECT_EQ(g.producer(block_input).module, "layer1.1");
  EXPECT_EQ(g.consumers(block_input).size(), 2u);
  const Node& add = g.nodes[find_node(g, OpKind::kAdd, "layer2.0")];
  ASSERT_EQ(add.inputs.size(), 2u);
  EXPECT_EQ(g.producer(add.inputs[0]).module, "layer2.0.bn2");
  EXPECT_EQ(g.producer(add.inputs[1]).module, "layer2.0.downsample.1");
  EXPECT_EQ(g.producer(projection.output).kind, OpKind::kConv2d);
  EXPECT_EQ(g.nodes[g.sole_consumer(projection.output)].module, "layer2.0.downsample.1");
  const NodeId relu = g.sole_consumer(add.output);
  ASSERT_GE(relu, 0);
  EXPECT_EQ(g.nodes[relu].kind, OpKind::kRelu);
  EXPECT_EQ(g.value(add.output).shape, (Shape{1, 128, 16, 16}));
  // An identity block adds its input itself.
  const Node& identity_add = g.nodes[find_node(g, OpKind::kAdd, "layer2.1")];
  EXPECT_EQ(identity_add.inputs[1], g.nodes[relu].output);
}

TEST(Graph, ResNet50AndResNet20) {
  Generator gen(3);
  const Graph r50 = trace(*nn::resnet50(1000, false, gen), {3, 224, 224});
  std::map<OpKind, int> kinds = count_kinds(r50);
  EXPECT_EQ(kinds[OpKind::kConv2d], 53);
  EXPECT_EQ(kinds[OpKind::kBatchNorm], 53);
  EXPECT_EQ(kinds[OpKind::kAdd], 16);
  EXPECT_EQ(kinds[OpKind::kRelu], 49);
  EXPECT_EQ(r50.layers().size(), 54u);
  const Graph r20 = trace(*nn::resnet20(10, gen), {3, 32, 32});
  kinds = count_kinds(r20);
  EXPECT_EQ(kinds[OpKind::kConv2d], 21);
  EXPECT_EQ(kinds[OpKind::kAdd], 9);
  EXPECT_EQ(kinds[OpKind::kMaxPool2d], 0);
  EXPECT_EQ(r20.value(r20.nodes[1].output).shape, (Shape{1, 16, 32, 32}));
}

TEST(Graph, MobileNetV2) {
  Generator gen(4);
  nn::MobileNetV2Options options;
  options.num_classes = 10;
  auto model = std::make_shared<nn::MobileNetV2>(options, gen);
  const Graph g = trace(*model, {3, 224, 224});
  std::map<OpKind, int> kinds = count_kinds(g);
  EXPECT_EQ(kinds[OpKind::kConv2d], 52);
  EXPECT_EQ(kinds[OpKind::kBatchNorm], 52);
  EXPECT_EQ(kinds[OpKind::kRelu6], 35);  // every conv but the 17 pw-linear ones
  EXPECT_EQ(kinds[OpKind::kAdd], 10);    // stride-1 blocks with as many inputs as outputs
  EXPECT_EQ(kinds[OpKind::kDropout], 1);
  EXPECT_EQ(kinds[OpKind::kLinear], 1);
  const Node& depthwise = g.nodes[find_node(g, OpKind::kConv2d, "features.2.conv.1.0")];
  EXPECT_EQ(depthwise.attributes.conv.groups, 96);
  EXPECT_EQ(g.nodes[find_node(g, OpKind::kRelu6, "features.2.conv.1")].inputs[0],
            g.nodes[find_node(g, OpKind::kBatchNorm, "features.2.conv.1.1")].output);
  EXPECT_EQ(g.nodes[find_node(g, OpKind::kAdd, "features.3")].module, "features.3");
  EXPECT_EQ(g.nodes[find_node(g, OpKind::kDropout, "classifier.0")].attributes.dropout_p, 0.2);
}

TEST(Graph, FashionCnnLayersWithBatchNormAndActivation) {
  Generator gen(5);
  nn::FashionCnn model(10, gen);
  const Graph g = trace(model, model.input_shape());
  std::vector<std::string> kinds;
  for (const Node& n : g.nodes) kinds.push_back(op_kind_name(n.kind));
  EXPECT_THAT(kinds, ElementsAre("input", "conv2d", "batch_norm", "relu", "max_pool2d", "conv2d",
                                 "batch_norm", "relu", "max_pool2d", "reshape", "linear"));
  for (const Node& n : g.nodes) EXPECT_TRUE(g.value(n.output).materialized);
  const std::vector<Layer> layers = g.layers();
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].name, "conv1");
  EXPECT_EQ(layers[0].batch_norm, 2);
  EXPECT_EQ(layers[0].activation, 3);
  EXPECT_EQ(layers[1].name, "conv2");
  EXPECT_EQ(g.nodes[layers[1].batch_norm].module, "bn2");
  EXPECT_EQ(layers[2].name, "fc");
  EXPECT_EQ(layers[2].batch_norm, -1);
  EXPECT_EQ(layers[2].activation, -1);
  EXPECT_EQ(g.value(g.nodes[9].output).shape, (Shape{1, 64 * 7 * 7}));
  EXPECT_THAT(g.to_string(), HasSubstr("%2 = batch_norm[bn1](%1) : [1, 32, 28, 28]"));
}

TEST(Graph, TracingLeavesTheModelAsItWas) {
  Generator gen(6);
  auto model = nn::resnet20(10, gen);
  model->train();
  model->named_modules()[1].second->train(false);  // a mixed state survives as it is
  model->set_channels_last(true);
  std::vector<bool> flags;
  for (const auto& [name, m] : model->named_modules()) flags.push_back(m->is_training());
  std::vector<std::vector<float>> buffers;
  for (const auto& [name, b] : model->named_buffers()) buffers.push_back(b.to_vector<float>());
  trace(*model, {3, 32, 32});
  EXPECT_TRUE(model->is_training());
  EXPECT_TRUE(model->channels_last());
  size_t i = 0;
  for (const auto& [name, m] : model->named_modules())
    EXPECT_EQ(m->is_training(), flags[i++]) << name;
  i = 0;
  for (const auto& [name, b] : model->named_buffers()) {
    EXPECT_EQ(b.to_vector<float>(), buffers[i++]) << name;
  }
  EXPECT_FALSE(trace::active());
}

TEST(Graph, AWrongInputShapeNamesBothShapes) {
  Generator gen(7);
  nn::FashionCnn model(10, gen);
  EXPECT_THAT(
      [&] {
        trace(model, {3, 28, 28});
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("trace: the forward of an input of shape [1, 3, 28, 28] failed"),
                HasSubstr("built for inputs [N, 1, 28, 28]"))));
  EXPECT_FALSE(trace::active());
}

// forward_with_values reports the live tensors of a later forward, in training mode too.
TEST(Graph, ForwardWithValuesReportsTheLiveTensors) {
  Generator gen(8);
  auto model = nn::resnet20(10, gen);
  const Graph g = trace(*model, {3, 32, 32});
  Tensor images = Tensor::empty({4, 3, 32, 32});
  ops::normal_(images, 0.0, 1.0, gen);
  std::map<ValueId, Tensor> seen;
  Tensor logits;
  {
    NoGradGuard no_grad;
    model->eval();
    logits = forward_with_values(*model, g, images,
                                 [&](ValueId v, const Tensor& t) { seen.emplace(v, t); });
  }
  EXPECT_EQ(seen.at(g.output).to_vector<float>(), logits.to_vector<float>());
  for (const auto& [v, t] : seen) {
    EXPECT_TRUE(g.value(v).materialized);
    Shape expected = g.value(v).shape;
    expected[0] = 4;
    EXPECT_EQ(t.shape(), expected) << v;
  }
  // A different forward is refused.
  auto other = nn::resnet18(10, true, gen);
  NoGradGuard no_grad;
  EXPECT_THAT(
      [&] { forward_with_values(*other, g, images, [](ValueId, const Tensor&) {}); },
      ::testing::ThrowsMessage<Error>(HasSubstr("the forward differs from the traced one")));
}

// A conv whose batch norm is registered before it (and a ReLU module between them): the graph,
// not the registration order, says which batch norm follows the conv.
class BatchNormFirst : public nn::Model {
 public:
  explicit BatchNormFirst(Generator& gen) {
    bn_ = register_module("norm", std::make_shared<nn::BatchNorm2d>(6));
    Conv2dParams same;
    same.padding = {1, 1};
    conv_ = register_module(
        "conv", std::make_shared<nn::Conv2d>(3, 6, std::array<int64_t, 2>{3, 3}, same, true, gen));
  }
  Tensor forward(const Tensor& x) override { return relu((*bn_)((*conv_)(x))); }
  Shape input_shape() const override { return {3, 8, 8}; }

  std::shared_ptr<nn::BatchNorm2d> bn_;
  std::shared_ptr<nn::Conv2d> conv_;
};

TEST(Graph, ABatchNormRegisteredBeforeItsConvStillFolds) {
  Generator gen(9);
  BatchNormFirst model(gen);
  {
    NoGradGuard no_grad;
    Tensor(model.bn_->running_mean()).copy_(ops::mul(randn({6}, gen), 0.5));
    Tensor(model.bn_->running_var()).copy_(ops::add(rand({6}, gen), 0.5));
    Tensor(model.bn_->weight()).copy_(ops::add(rand({6}, gen), 0.5));
  }
  model.eval();
  const std::vector<nn::QuantizableLayer> layers = model.quantizable_layers();
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].batch_norm, model.bn_);
  const Tensor x = randn({2, 3, 8, 8}, gen);
  Tensor expected, got;
  NoGradGuard no_grad;
  expected = model.forward(x);
  nn::quantize_model(model, {{"conv", 8}});
  EXPECT_TRUE(model.bn_->folded());
  got = model.forward(x);
  const std::vector<float> a = expected.to_vector<float>(), b = got.to_vector<float>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(a[i])));
  }
  EXPECT_LT(diff / scale, 0.03);  // 8-bit weights and inputs around the folded conv
}

}  // namespace
}  // namespace ompq::graph
