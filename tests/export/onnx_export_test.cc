// ONNX export (layers/export/onnx_export.h) of every architecture family: model.onnx with and
// without folded batch norms and quantized.onnx (QAT and PTQ recipes, mixed 2..8-bit weights) pass
// ONNX's checker and strict shape inference when read back; the QDQ file holds one
// QuantizeLinear/DequantizeLinear pair per quantized input, a Clip exactly where the activation
// bits are below 8, and int8 weight codes spanning each layer's bit-width; an 8-bit QAT ResNet-20
// gets output pairs on exactly the convs whose ReLU feeds one quantized layer; what cannot be
// exported is refused with the node or layer named. (ONNX Runtime runs the files in tests/e2e.)
#include "layers/export/onnx_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/pool.h"
#include "core/random.h"
#include "layers/conv.h"
#include "layers/graph/graph.h"
#include "layers/models/registry.h"
#include "layers/quant/quantize_model.h"
#include "onnx/onnx_pb.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/onnx_export_" + name + ".onnx";
}

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const onnx::NodeProto& node : model.graph().node()) ++counts[node.op_type()];
  return counts;
}

// The Conv nodes with an output pair (Conv -> QuantizeLinear -> DequantizeLinear -> Relu or Clip),
// in graph order; a conv whose output is the next layer's input goes through that layer's input
// pair alone (Conv -> Q/DQ -> Conv), which is no output pair.
std::vector<std::string> convs_with_output_pairs(const onnx::ModelProto& model) {
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  for (const onnx::NodeProto& node : model.graph().node()) {
    for (const std::string& input : node.input()) readers[input].push_back(&node);
  }
  const auto sole_reader = [&](const std::string& tensor,
                               const char* op) -> const onnx::NodeProto* {
    const auto it = readers.find(tensor);
    if (it == readers.end() || it->second.size() != 1 || it->second[0]->op_type() != op) {
      return nullptr;
    }
    return it->second[0];
  };
  std::vector<std::string> convs;
  for (const onnx::NodeProto& node : model.graph().node()) {
    if (node.op_type() != "Conv") continue;
    const onnx::NodeProto* quantize = sole_reader(node.output(0), "QuantizeLinear");
    const onnx::NodeProto* dequantize =
        quantize ? sole_reader(quantize->output(0), "DequantizeLinear") : nullptr;
    if (dequantize && (sole_reader(dequantize->output(0), "Relu") ||
                       sole_reader(dequantize->output(0), "Clip"))) {
      convs.push_back(node.name());
    }
  }
  return convs;
}

struct ModelCase {
  const char* name;
  int64_t num_classes;
  bool small_input;
};

class OnnxExportModels : public ::testing::TestWithParam<ModelCase> {
 protected:
  std::shared_ptr<Model> make() const {
    ModelSpec spec;
    spec.name = GetParam().name;
    spec.num_classes = GetParam().num_classes;
    spec.small_input = GetParam().small_input;
    auto model = make_model(spec, gen_);
    EXPECT_TRUE(model.ok()) << model.status();
    (*model)->eval();
    return *model;
  }
  mutable Generator gen_{7};
};

TEST_P(OnnxExportModels, Fp32FilesPassTheCheckerWithAndWithoutFoldedBatchNorms) {
  const std::shared_ptr<Model> model = make();
  const graph::Graph graph = graph::trace(*model, model->input_shape());
  int batch_norms = 0;
  for (const graph::Node& node : graph.nodes) batch_norms += node.kind == graph::OpKind::kBatchNorm;
  for (bool fold : {false, true}) {
    const std::string path = temp_path(std::string(GetParam().name) + (fold ? "_folded" : ""));
    OnnxExportOptions options;
    options.fold_batch_norm = fold;
    auto summary = export_fp32_onnx(graph, model->state_dict(), options, path);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->quantized_layers, 0);
    ASSERT_TRUE(check_onnx_file(path).ok()) << check_onnx_file(path);
    const onnx::ModelProto onnx_model = read_model(path);
    EXPECT_EQ(onnx_model.opset_import(0).version(), 13);
    EXPECT_EQ(onnx_model.graph().output(0).name(), "logits");
    const std::map<std::string, int> ops = op_counts(onnx_model);
    // Every batch norm of these models follows a conv alone, so folding removes them all.
    EXPECT_EQ(ops.count("BatchNormalization") ? ops.at("BatchNormalization") : 0,
              fold ? 0 : batch_norms);
    EXPECT_EQ(ops.count("QuantizeLinear"), 0u);
  }
}

// Weight bits 2..8 in turn over the layers; returns them by name.
std::map<std::string, int> mixed_bits(const Model& model) {
  std::map<std::string, int> bits;
  int b = 2;
  for (const QuantizableLayer& layer : model.quantizable_layers()) {
    bits[layer.name] = b;
    b = b == 8 ? 2 : b + 1;
  }
  return bits;
}

void calibrate(Model& model, Generator& gen) {
  NoGradGuard no_grad;
  Shape input = {2};
  for (int64_t d : model.input_shape()) input.push_back(d);
  model.forward(randn(input, gen));
  set_quantizers_frozen(model, true);
}

// The int8 values of an initializer.
std::vector<int> int8_values(const onnx::TensorProto& t) {
  const std::string& raw = t.raw_data();
  std::vector<int> values;
  for (char c : raw) values.push_back(static_cast<int8_t>(c));
  return values;
}

TEST_P(OnnxExportModels, QdqFilesHoldOnePairPerQuantizedInputAndCodesWithinTheirBits) {
  for (QuantScheme scheme : {QuantScheme::kQat, QuantScheme::kPtq}) {
    const std::shared_ptr<Model> model = make();
    const graph::Graph graph = graph::trace(*model, model->input_shape());
    const std::map<std::string, int> bits = mixed_bits(*model);
    QuantizeOptions options;
    options.scheme = scheme;
    options.act_bits = scheme == QuantScheme::kQat ? 4 : 8;
    const std::string first = model->quantizable_layers().front().name;
    if (scheme == QuantScheme::kPtq) options.float_inputs = {first};  // BRECQ's real-valued stem
    options.input_bits[first] = 8;
    quantize_model(*model, bits, options);
    calibrate(*model, gen_);
    const PackedModel packed = pack_model(*model);
    const std::string path = temp_path(std::string(GetParam().name) + "_qdq");
    auto summary = export_qdq_onnx(graph, packed, path);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->quantized_layers, static_cast<int64_t>(bits.size()));
    ASSERT_TRUE(check_onnx_file(path).ok()) << check_onnx_file(path);

    const onnx::ModelProto onnx_model = read_model(path);
    const std::map<std::string, int> ops = op_counts(onnx_model);
    int quantized_inputs = 0, narrow_inputs = 0;
    for (const PackedLayer& layer : packed.layers) {
      quantized_inputs += layer.input.has_value();
      narrow_inputs += layer.input.has_value() && layer.input->bits < 8;
    }
    // Output pairs only where the reader's pair has no Clip: none at QAT's 4 activation bits.
    const int output_pairs = static_cast<int>(convs_with_output_pairs(onnx_model).size());
    if (scheme == QuantScheme::kQat) EXPECT_EQ(output_pairs, 0);
    EXPECT_EQ(ops.at("QuantizeLinear"), quantized_inputs + output_pairs);
    EXPECT_EQ(ops.at("DequantizeLinear"),
              quantized_inputs + output_pairs + static_cast<int>(bits.size()));
    const int relu6 = ops.count("Clip") ? ops.at("Clip") - narrow_inputs : 0;
    EXPECT_GE(relu6, 0);
    EXPECT_EQ(ops.count("BatchNormalization"), 0u);  // folded into the quantized convs
    int weights_seen = 0;
    for (const onnx::TensorProto& t : onnx_model.graph().initializer()) {
      const std::string suffix = ".weight_codes";
      if (t.name().size() <= suffix.size() ||
          t.name().compare(t.name().size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      ASSERT_EQ(t.data_type(), onnx::TensorProto::INT8) << t.name();
      const int b = bits.at(t.name().substr(0, t.name().size() - suffix.size()));
      // Each output channel's codes span at most the bit-width's 2^b values (within int8).
      const std::vector<int> codes = int8_values(t);
      const size_t per_channel = codes.size() / static_cast<size_t>(t.dims(0));
      for (size_t begin = 0; begin < codes.size(); begin += per_channel) {
        const auto [lo, hi] =
            std::minmax_element(codes.begin() + begin, codes.begin() + begin + per_channel);
        EXPECT_LT(*hi - *lo, 1 << b) << t.name() << " channel " << begin / per_channel;
      }
      ++weights_seen;
    }
    EXPECT_EQ(weights_seen, static_cast<int>(bits.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, OnnxExportModels,
                         ::testing::Values(ModelCase{"resnet18", 1000, false},
                                           ModelCase{"resnet20", 10, false},
                                           ModelCase{"mobilenet_v2", 10, true},
                                           ModelCase{"fashion_cnn", 10, false}),
                         [](const auto& info) { return std::string(info.param.name); });

// `spec` (fresh weights, every layer at `weight_bits`, 8-bit activations, `scheme`, calibrated)
// exported as QDQ with `options`, checked, read back.
onnx::ModelProto export_uniform(const std::string& name, const ModelSpec& spec, int weight_bits,
                                QuantScheme scheme, const QdqExportOptions& options = {}) {
  Generator gen(11);
  auto model = make_model(spec, gen);
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  const graph::Graph graph = graph::trace(**model, (*model)->input_shape());
  std::map<std::string, int> bits;
  for (const QuantizableLayer& layer : (*model)->quantizable_layers()) {
    bits[layer.name] = weight_bits;
  }
  QuantizeOptions quantize_options;
  quantize_options.scheme = scheme;
  quantize_options.act_bits = 8;
  quantize_model(**model, bits, quantize_options);
  calibrate(**model, gen);
  const std::string path = temp_path(name);
  auto summary = export_qdq_onnx(graph, pack_model(**model), path, options);
  EXPECT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(check_onnx_file(path).ok()) << check_onnx_file(path);
  return read_model(path);
}

// An 8-bit QAT ResNet-20 exported with `options`.
onnx::ModelProto export_resnet20_qat8(const std::string& name, const QdqExportOptions& options) {
  ModelSpec spec;
  spec.name = "resnet20";
  spec.num_classes = 10;
  return export_uniform(name, spec, 8, QuantScheme::kQat, options);
}

// An output pair is Q -> DQ -> `activation` (Relu, or Clip for ReLU6) -> Q of uint8 codes with
// zero point 0 and the same scale; returns the output pair's zero point type, or -1 when the chain
// differs.
int output_pair_chain(const onnx::ModelProto& model, const std::string& conv_name,
                      const std::string& activation_op) {
  std::map<std::string, const onnx::NodeProto*> reader;
  for (const onnx::NodeProto& node : model.graph().node()) {
    for (const std::string& input : node.input()) reader[input] = &node;
  }
  std::map<std::string, const onnx::TensorProto*> initializer;
  for (const onnx::TensorProto& t : model.graph().initializer()) initializer[t.name()] = &t;
  for (const onnx::NodeProto& conv : model.graph().node()) {
    if (conv.name() != conv_name) continue;
    const onnx::NodeProto* quantize = reader[conv.output(0)];
    const onnx::NodeProto* dequantize = reader[quantize->output(0)];
    const onnx::NodeProto* activation = reader[dequantize->output(0)];
    const onnx::NodeProto* next = reader[activation->output(0)];
    const bool chain =
        quantize->op_type() == "QuantizeLinear" && dequantize->op_type() == "DequantizeLinear" &&
        activation->op_type() == activation_op && next->op_type() == "QuantizeLinear" &&
        initializer.at(next->input(2))->data_type() == onnx::TensorProto::UINT8 &&
        initializer.at(next->input(2))->raw_data() == std::string(1, '\0') &&
        initializer.at(next->input(1))->raw_data() ==
            initializer.at(quantize->input(1))->raw_data() &&
        initializer.at(quantize->input(2))->raw_data() ==
            initializer.at(next->input(2))->raw_data();
    return chain ? initializer.at(quantize->input(2))->data_type() : -1;
  }
  return -1;
}

// ResNet-20's convs whose ReLU feeds only one conv: the first conv of each of its nine blocks.
std::vector<std::string> resnet20_block_first_convs() {
  std::vector<std::string> convs;
  for (const char* stage : {"layer1", "layer2", "layer3"}) {
    for (int block = 0; block < 3; ++block) {
      convs.push_back(std::string(stage) + "." + std::to_string(block) + ".conv1/conv2d");
    }
  }
  return convs;
}

// 8-bit QAT ResNet-20: each block's first conv, whose ReLU feeds only the second conv, gets the
// second conv's pair on its output (int8, before the ReLU) and a uint8 pair with zero point 0 and
// the same scale after it (what ONNX Runtime fuses into QLinearConv); the stem and the second
// convs, whose outputs reach a shortcut or a residual add, keep float outputs.
TEST(OnnxExport, ABlocksFirstConvGetsItsReadersPairOnItsOutput) {
  const onnx::ModelProto onnx_model = export_resnet20_qat8("resnet20_output_pairs", {});
  const std::vector<std::string> paired = convs_with_output_pairs(onnx_model);
  for (const std::string& conv : paired) {
    EXPECT_EQ(output_pair_chain(onnx_model, conv, "Relu"), onnx::TensorProto::INT8) << conv;
  }
  EXPECT_EQ(paired, resnet20_block_first_convs());
}

// PTQ's quantizers of ReLU outputs are unsigned with zero point 0: each block's first conv gets
// its reader's uint8 pair on its output too (the pair clamps negatives as the ReLU does), so that
// runtimes run it as an integer convolution; the same for MobileNetV2's ReLU6 (QAT, int8 pairs:
// the expand and depthwise convs, whose ReLU6 feeds one conv).
TEST(OnnxExport, ConvsWhoseActivationFeedsOneLayerGetItsPairOnTheirOutput) {
  struct Case {
    const char* model;
    bool small_input;
    QuantScheme scheme;
    const char* activation_op;
    int expected_zero_point_type;
  };
  for (const Case& c :
       {Case{"resnet20", false, QuantScheme::kPtq, "Relu", onnx::TensorProto::UINT8},
        Case{"mobilenet_v2", true, QuantScheme::kQat, "Clip", onnx::TensorProto::INT8}}) {
    ModelSpec spec;
    spec.name = c.model;
    spec.num_classes = 10;
    spec.small_input = c.small_input;
    const onnx::ModelProto onnx_model =
        export_uniform(std::string(c.model) + "_activation_output_pairs", spec, 4, c.scheme);
    const std::vector<std::string> paired = convs_with_output_pairs(onnx_model);
    for (const std::string& conv : paired) {
      EXPECT_EQ(output_pair_chain(onnx_model, conv, c.activation_op), c.expected_zero_point_type)
          << c.model << " " << conv;
    }
    if (std::string(c.model) == "resnet20") {
      EXPECT_EQ(paired, resnet20_block_first_convs());
    } else {
      // The stem and every expand and depthwise conv (17 inverted residuals, 16 of them with an
      // expansion) feed one conv through ReLU6; the last conv's ReLU6 feeds the pooling.
      EXPECT_EQ(paired.size(), 1u + 16u + 17u);
    }
  }
}

// For TensorRT: every activation pair int8 with zero point 0, at the same places as the default
// export's (whose pairs after ReLUs are uint8).
TEST(OnnxExport, SignedActivationCodesWriteOnlyInt8PairsAtTheSamePlaces) {
  QdqExportOptions signed_codes;
  signed_codes.activation_codes = QdqActivationCodes::kSigned;
  const onnx::ModelProto signed_model = export_resnet20_qat8("resnet20_signed", signed_codes);
  const onnx::ModelProto default_model = export_resnet20_qat8("resnet20_default", {});
  auto zero_points = [](const onnx::ModelProto& model) {
    std::map<std::string, const onnx::TensorProto*> initializer;
    for (const onnx::TensorProto& t : model.graph().initializer()) initializer[t.name()] = &t;
    std::vector<std::pair<std::string, int>> found;  // QuantizeLinear node, zero point's type
    for (const onnx::NodeProto& node : model.graph().node()) {
      if (node.op_type() != "QuantizeLinear") continue;
      const onnx::TensorProto* zero_point = initializer.at(node.input(2));
      EXPECT_EQ(zero_point->raw_data(), std::string(1, '\0')) << node.name();
      found.emplace_back(node.name(), zero_point->data_type());
    }
    return found;
  };
  const auto signed_pairs = zero_points(signed_model), default_pairs = zero_points(default_model);
  ASSERT_EQ(signed_pairs.size(), default_pairs.size());
  int unsigned_in_default = 0;
  for (size_t i = 0; i < signed_pairs.size(); ++i) {
    EXPECT_EQ(signed_pairs[i].first, default_pairs[i].first);
    EXPECT_EQ(signed_pairs[i].second, onnx::TensorProto::INT8) << signed_pairs[i].first;
    unsigned_in_default += default_pairs[i].second == onnx::TensorProto::UINT8;
  }
  EXPECT_GT(unsigned_in_default, 0) << "the default export wrote no uint8 pair to compare with";
}

TEST(OnnxExport, APackedModelOfAnotherArchitectureIsRefusedNamingTheLayer) {
  Generator gen(8);
  ModelSpec resnet20{"resnet20", 10};
  ModelSpec fashion{"fashion_cnn", 10};
  auto quantized = make_model(resnet20, gen);
  auto other = make_model(fashion, gen);
  ASSERT_TRUE(quantized.ok() && other.ok());
  quantize_model(**quantized, mixed_bits(**quantized));
  calibrate(**quantized, gen);
  const PackedModel packed = pack_model(**quantized);
  auto summary = export_qdq_onnx(graph::trace(**other, (*other)->input_shape()), packed,
                                 temp_path("mismatch"));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("\"layer1.0.conv1\""));
}

TEST(OnnxExport, AMissingParameterIsRefusedNamingIt) {
  Generator gen(9);
  auto model = make_model(ModelSpec{"fashion_cnn", 10}, gen);
  ASSERT_TRUE(model.ok());
  TensorMap state = (*model)->state_dict();
  state.erase("bn2.running_var");
  auto summary = export_fp32_onnx(graph::trace(**model, (*model)->input_shape()), state, {},
                                  temp_path("missing"));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("\"bn2.running_var\""));
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("bn2 (batch_norm)"));
}

// A 1x1 conv on a side x side input, then an adaptive average pool to bins x bins.
class AdaptivePool : public Model {
 public:
  AdaptivePool(int64_t side, int64_t bins, Generator& gen) : side_(side), bins_(bins) {
    conv_ = register_module("conv", std::make_shared<Conv2d>(3, 4, std::array<int64_t, 2>{1, 1},
                                                             Conv2dParams{}, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    return adaptive_avg_pool2d((*conv_)(x), {bins_, bins_}).flatten(1);
  }
  Shape input_shape() const override { return {3, side_, side_}; }

 private:
  int64_t side_, bins_;
  std::shared_ptr<Conv2d> conv_;
};

TEST(OnnxExport, AnOpOnnxCannotExpressIsRefusedNamingTheNode) {
  Generator gen(10);
  AdaptivePool model(/*side=*/7, /*bins=*/3, gen);  // bins of 2 and 3 cells
  auto summary = export_fp32_onnx(graph::trace(model, model.input_shape()), model.state_dict(), {},
                                  temp_path("unequal_bins"));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("adaptive_avg_pool2d"));
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("bins of unequal sizes"));
}

// VGG's 7x7 pool of a small input's 1x1 map, and any whole-multiple enlargement, repeat cells
// (Reshape, Expand, Reshape), keeping the symbolic batch through shape inference.
TEST(OnnxExport, AnEnlargingPoolRepeatsCells) {
  for (const auto& [side, bins] : std::vector<std::pair<int64_t, int64_t>>{{1, 7}, {2, 6}}) {
    Generator gen(11);
    AdaptivePool model(side, bins, gen);
    const std::string path = temp_path("enlarging_pool");
    auto summary =
        export_fp32_onnx(graph::trace(model, model.input_shape()), model.state_dict(), {}, path);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(op_counts(read_model(path))["Expand"], 1) << side << " -> " << bins;
  }
}

TEST(OnnxExport, ACorruptFileFailsTheCheckNamingIt) {
  const std::string path = temp_path("corrupt");
  std::ofstream(path) << "not a protobuf";
  const absl::Status status = check_onnx_file(path);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

// AdaptivePool's model (conv, then a 1x1 map enlarged to 7x7 bins: Reshape, Expand, Reshape)
// exported as FP32 to `path` and read back.
onnx::ModelProto export_enlarging_pool(const std::string& path) {
  Generator gen(11);
  AdaptivePool model(/*side=*/1, /*bins=*/7, gen);
  EXPECT_TRUE(
      export_fp32_onnx(graph::trace(model, model.input_shape()), model.state_dict(), {}, path)
          .ok());
  return read_model(path);
}

// ONNX writes the checker's context and each shape inference error on lines of their own; the
// refusal joins them, so that an app's error stays one line.
TEST(OnnxExport, ARefusedModelIsOneLineNamingTheFileAndTheNode) {
  const std::string path = temp_path("two_minus_ones");
  onnx::ModelProto broken = export_enlarging_pool(path);
  // The first Reshape's target shape [0, 0, 1, 1, 1, 1] with two -1s, which shape inference
  // refuses ("Target shape may not have multiple -1 dimensions.", ending in a newline).
  const onnx::NodeProto& reshape = broken.graph().node(1);
  ASSERT_EQ(reshape.op_type(), "Reshape");
  for (onnx::TensorProto& t : *broken.mutable_graph()->mutable_initializer()) {
    if (t.name() != reshape.input(1)) continue;
    const std::vector<int64_t> target = {0, 0, -1, 1, -1, 1};
    t.set_raw_data(target.data(), target.size() * sizeof(int64_t));
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << broken.SerializeAsString();
  const absl::Status status = check_onnx_file(path);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("multiple -1"));
  EXPECT_THAT(message, HasSubstr(reshape.name()));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// What Debian's ONNX shape inference would crash on (a zero stride divides by zero), or may crash
// on (operators outside the exported subset), is refused before it runs: one line naming the file,
// the node and the value.
TEST(OnnxExport, OutOfRangeAttributesAndForeignOperatorsAreRefusedBeforeShapeInference) {
  const std::string exported = temp_path("subset_source");
  const onnx::ModelProto good = export_enlarging_pool(exported);
  ASSERT_EQ(good.graph().node(0).op_type(), "Conv");
  const auto conv_attribute = [](onnx::ModelProto& m, const std::string& name) {
    for (onnx::AttributeProto& a : *m.mutable_graph()->mutable_node(0)->mutable_attribute()) {
      if (a.name() == name) return &a;
    }
    ADD_FAILURE() << "no " << name;
    return m.mutable_graph()->mutable_node(0)->add_attribute();
  };
  struct Mutation {
    const char* expected;
    std::function<void(onnx::ModelProto&)> apply;
  };
  const std::vector<Mutation> mutations = {
      {"strides [0, 1]: every value must be >= 1",
       [&](onnx::ModelProto& m) { conv_attribute(m, "strides")->set_ints(0, 0); }},
      {"dilations [1, -2]: every value must be >= 1",
       [&](onnx::ModelProto& m) { conv_attribute(m, "dilations")->set_ints(1, -2); }},
      {"kernel_shape [0, 1]",
       [&](onnx::ModelProto& m) { conv_attribute(m, "kernel_shape")->set_ints(0, 0); }},
      {"pads [0, 0, -1, 0]: every value must be >= 0",
       [&](onnx::ModelProto& m) { conv_attribute(m, "pads")->set_ints(2, -1); }},
      {"strides [1, 1, 1] has 3 values for 2 spatial axes",
       [&](onnx::ModelProto& m) { conv_attribute(m, "strides")->add_ints(1); }},
      {"group 0 must be >= 1", [&](onnx::ModelProto& m) { conv_attribute(m, "group")->set_i(0); }},
      {"no kernel_shape",
       [&](onnx::ModelProto& m) { conv_attribute(m, "kernel_shape")->set_name("kernel"); }},
      {"(Split) is not one of the operators ompq exports",
       [](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(1)->set_op_type("Split"); }},
      {"in domain \"com.microsoft\"",
       [](onnx::ModelProto& m) {
         m.mutable_graph()->mutable_node(1)->set_domain("com.microsoft");
       }},
      {"declares dimension 1 as -3",
       [](onnx::ModelProto& m) {
         m.mutable_graph()
             ->mutable_input(0)
             ->mutable_type()
             ->mutable_tensor_type()
             ->mutable_shape()
             ->mutable_dim(1)
             ->set_dim_value(-3);
       }},
      {"local functions", [](onnx::ModelProto& m) { m.add_functions()->set_name("f"); }},
      // A name from the file is escaped: the refusal stays one line.
      {"node \"conv\\nbreak\" (Conv)",
       [&](onnx::ModelProto& m) {
         m.mutable_graph()->mutable_node(0)->set_name("conv\nbreak");
         conv_attribute(m, "strides")->set_ints(1, 0);
       }},
  };
  for (const Mutation& mutation : mutations) {
    onnx::ModelProto broken = good;
    mutation.apply(broken);
    const std::string path = temp_path("subset_broken");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << broken.SerializeAsString();
    const absl::Status status = check_onnx_file(path);
    ASSERT_FALSE(status.ok()) << mutation.expected;
    const std::string message(status.message());
    EXPECT_THAT(message, HasSubstr(path));
    EXPECT_THAT(message, HasSubstr(mutation.expected));
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_TRUE(check_onnx_file(exported).ok());
}

}  // namespace
}  // namespace ompq::nn
