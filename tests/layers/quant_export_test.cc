// Packed integer export and CPU integer inference: every bit-width and both recipes on random conv
// and linear layers (integer output = fake-quantized output within 2e-5 of its largest value),
// the safetensors round trip with the documented names and sizes, whole ResNet-20s (QAT mixed
// 4..8 bits and PTQ mixed 2..4 bits), and every bad file or mismatched model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/quant_math.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "layers/models/resnet.h"
#include "layers/quant/integer_layer.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quantize_model.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/quant_export_" + name + ".safetensors";
}

void randomize_batch_norms(const Module& model, Generator& gen) {
  NoGradGuard no_grad;
  for (const auto& [name, module] : model.named_modules()) {
    auto bn = std::dynamic_pointer_cast<BatchNorm>(module);
    if (!bn) continue;
    const int64_t c = bn->num_features();
    Tensor(bn->running_mean()).copy_(ops::mul(randn({c}, gen), 0.1));
    Tensor(bn->running_var()).copy_(ops::add(rand({c}, gen), 0.5));
    Tensor(bn->weight()).copy_(ops::add(rand({c}, gen), 0.5));
    Tensor(bn->bias()).copy_(ops::mul(randn({c}, gen), 0.1));
  }
}

// One conv (+ its batch norm) or one linear layer as a Model, to test layers in isolation.
class SingleLayer : public Model {
 public:
  SingleLayer(int64_t in, int64_t out, int64_t kernel, const Conv2dParams& p, bool with_bn,
              Generator& gen) {
    conv_ = register_module(
        "conv", std::make_shared<Conv2d>(in, out, std::array<int64_t, 2>{kernel, kernel}, p,
                                         /*bias=*/!with_bn, gen));
    if (with_bn) bn_ = register_module("bn", std::make_shared<BatchNorm2d>(out));
  }
  SingleLayer(int64_t in, int64_t out, Generator& gen) {
    fc_ = register_module("fc", std::make_shared<Linear>(in, out, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    if (fc_) return fc_->forward(x);
    Tensor y = conv_->forward(x);
    return bn_ ? bn_->forward(y) : y;
  }
  Shape input_shape() const override { return {}; }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<BatchNorm2d> bn_;
  std::shared_ptr<Linear> fc_;
};

// The largest |a - b| relative to the largest |a|.
double relative_max_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(x[i] - y[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(x[i])));
  }
  return diff / scale;
}

// Runs a few calibration batches through a quantized model, then freezes it for evaluation.
void calibrate(Model& model, const Shape& input, Generator& gen, int batches = 3) {
  NoGradGuard no_grad;
  for (int i = 0; i < batches; ++i) model.forward(randn(input, gen));
  set_quantizers_frozen(model, true);
}

TEST(IntegerInference, RandomLayersMatchTheFakeQuantizedLayerAtEveryWidth) {
  Generator gen(1);
  Conv2dParams strided;
  strided.stride = {2, 2};
  strided.padding = {1, 1};
  Conv2dParams grouped;
  grouped.groups = 3;
  grouped.padding = {1, 1};
  grouped.dilation = {2, 1};
  for (int bits = 2; bits <= 8; ++bits) {
    for (QuantScheme scheme : {QuantScheme::kQat, QuantScheme::kPtq}) {
      struct Case {
        std::shared_ptr<SingleLayer> model;
        Shape input;
      };
      std::vector<Case> cases = {
          {std::make_shared<SingleLayer>(5, 7, 3, strided, true, gen), {2, 5, 9, 8}},
          {std::make_shared<SingleLayer>(6, 9, 3, grouped, false, gen), {1, 6, 7, 7}},
          {std::make_shared<SingleLayer>(13, 3, gen), {4, 13}}};
      for (Case& c : cases) {
        randomize_batch_norms(*c.model, gen);
        c.model->eval();
        const std::string name = c.model->quantizable_layers()[0].name;
        QuantizeOptions options;
        options.scheme = scheme;
        options.act_bits = scheme == QuantScheme::kQat ? 8 : (bits % 2 ? 8 : 4);
        quantize_model(*c.model, {{name, bits}}, options);
        calibrate(*c.model, c.input, gen);
        Tensor x = randn(c.input, gen);
        Tensor fake = c.model->forward(x);
        PackedModel packed = pack_model(*c.model);
        ASSERT_EQ(packed.layers.size(), 1u);
        IntegerLayer integer(packed.layers[0]);
        EXPECT_LT(relative_max_diff(fake, integer.forward(x)), 2e-5)
            << name << ", " << bits << " bits, " << (scheme == QuantScheme::kQat ? "QAT" : "PTQ");
      }
    }
  }
}

TEST(IntegerInference, RealValuedInputUsesTheDequantizedWeights) {
  Generator gen(2);
  SingleLayer model(4, 6, 3, {}, true, gen);
  randomize_batch_norms(model, gen);
  model.eval();
  QuantizeOptions options;
  options.scheme = QuantScheme::kPtq;
  options.float_inputs = {"conv"};
  quantize_model(model, {{"conv", 3}}, options);
  Tensor x = randn({2, 4, 6, 6}, gen);
  Tensor fake = model.forward(x);
  PackedModel packed = pack_model(model);
  EXPECT_FALSE(packed.layers[0].input.has_value());
  EXPECT_LT(relative_max_diff(fake, IntegerLayer(packed.layers[0]).forward(x)), 1e-6);
}

TEST(PackedModel, SavesTheDocumentedTensorsAndLoadsThemBack) {
  Generator gen(3);
  auto model = resnet20(10, gen);
  randomize_batch_norms(*model, gen);
  model->eval();
  std::map<std::string, int> bits;
  int b = 2;
  for (const QuantizableLayer& layer : model->quantizable_layers()) bits[layer.name] = b++ % 7 + 2;
  QuantizeOptions options;
  options.scheme = QuantScheme::kPtq;
  quantize_model(*model, bits, options);
  calibrate(*model, {2, 3, 32, 32}, gen, 1);
  PackedModel packed = pack_model(*model);
  const std::string path = temp_path("roundtrip");
  ASSERT_TRUE(save_packed(path, packed).ok());

  // The raw file: the documented names, dtypes and packed sizes; no float weights of packed layers.
  absl::StatusOr<SafetensorsContents> raw = load_safetensors(path);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata.at("ompq.format"), "packed-v2");
  const TensorMap& t = raw->tensors;
  const int bits1 = bits.at("layer1.0.conv1");  // [16, 16, 3, 3]: 144 codes per row
  EXPECT_EQ(t.at("layer1.0.conv1.weight_packed").shape(), (Shape{16, (144 * bits1 + 7) / 8}));
  EXPECT_EQ(t.at("layer1.0.conv1.weight_scale").shape(), (Shape{16}));
  EXPECT_EQ(t.at("layer1.0.conv1.weight_zero_point").dtype(), DType::kF32);
  EXPECT_EQ(t.at("layer1.0.conv1.bias").shape(), (Shape{16}));
  EXPECT_EQ(t.at("layer1.0.conv1.input_scale").shape(), (Shape{}));
  EXPECT_EQ(t.count("layer1.0.conv1.input_zero_point"), 1u);
  EXPECT_EQ(t.count("layer1.0.conv1.weight"), 0u);
  EXPECT_EQ(t.count("layer1.0.bn1.running_mean"), 0u);
  EXPECT_EQ(t.count("fc.weight"), 0u);
  int64_t packed_bytes = 0, float_bytes = 0;
  for (const QuantizableLayer& layer : model->quantizable_layers()) {
    packed_bytes += t.at(layer.name + ".weight_packed").numel();
    float_bytes += 4 * shape_numel(layer.weight_shape);
  }
  EXPECT_LT(packed_bytes * 6, float_bytes);  // 2..8 bits (mean 5) instead of 32

  absl::StatusOr<PackedModel> loaded = load_packed(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->layers.size(), packed.layers.size());
  for (size_t i = 0; i < packed.layers.size(); ++i) {
    const PackedLayer &a = packed.layers[i], &c = loaded->layers[i];
    EXPECT_EQ(a.name, c.name);
    EXPECT_EQ(a.kind, c.kind);
    EXPECT_EQ(a.weight_shape, c.weight_shape);
    EXPECT_EQ(a.params.stride, c.params.stride);
    EXPECT_EQ(a.params.padding, c.params.padding);
    EXPECT_EQ(a.params.groups, c.params.groups);
    EXPECT_EQ(a.weight.str(), c.weight.str());
    EXPECT_EQ(a.folded_batch_norm, c.folded_batch_norm);
    EXPECT_EQ(a.packed_weight.to_vector<int32_t>(), c.packed_weight.to_vector<int32_t>());
    EXPECT_EQ(a.weight.scale.to_vector<float>(), c.weight.scale.to_vector<float>());
    EXPECT_EQ(a.weight.zero_point.to_vector<float>(), c.weight.zero_point.to_vector<float>());
    EXPECT_EQ(a.bias.to_vector<float>(), c.bias.to_vector<float>());
    ASSERT_EQ(a.input.has_value(), c.input.has_value());
    EXPECT_EQ(a.input->str(), c.input->str());
    EXPECT_EQ(a.input->scale.item<float>(), c.input->scale.item<float>());
    // The codes unpack to the quantizer's grid.
    EXPECT_EQ(c.dequantized_weight().to_vector<float>(),
              quantized_layers(*model)[i].second->quantized_weight().to_vector<float>())
        << a.name;
  }
  EXPECT_EQ(loaded->float_state.size(), packed.float_state.size());
  std::remove(path.c_str());
}

// Exports a quantized, calibrated ResNet-20, loads it into a fresh one for integer inference and
// compares the logits on new data.
void check_whole_model(QuantScheme scheme, const std::map<std::string, int>& bits,
                       const QuantizeOptions& base_options, uint64_t seed) {
  Generator gen(seed);
  auto model = resnet20(10, gen);
  randomize_batch_norms(*model, gen);
  model->eval();
  QuantizeOptions options = base_options;
  options.scheme = scheme;
  quantize_model(*model, bits, options);
  calibrate(*model, {8, 3, 32, 32}, gen);
  const Tensor x = randn({16, 3, 32, 32}, gen);
  const Tensor fake = model->forward(x);
  const std::string path = temp_path(scheme == QuantScheme::kQat ? "qat" : "ptq");
  ASSERT_TRUE(save_packed(path, pack_model(*model)).ok());
  absl::StatusOr<PackedModel> packed = load_packed(path);
  ASSERT_TRUE(packed.ok()) << packed.status();
  Generator other(seed + 100);
  auto fresh = resnet20(10, other);
  fresh->eval();
  ASSERT_TRUE(load_integer_model(*fresh, *packed).ok());
  const Tensor integer = fresh->forward(x);
  // Layer outputs agree to float rounding, but a rounding difference can move an activation
  // across a code boundary of the next quantizer, one step; through 22 layers the logits then
  // stay within 2% of their range.
  EXPECT_LT(relative_max_diff(fake, integer), 0.02);
  std::vector<float> a = fake.to_vector<float>(), b = integer.to_vector<float>();
  int agree = 0;
  for (int n = 0; n < 16; ++n) {
    auto row_argmax = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + n * 10, v.begin() + (n + 1) * 10) - (v.begin() + n * 10);
    };
    agree += row_argmax(a) == row_argmax(b);
  }
  EXPECT_GE(agree, 15);
  std::remove(path.c_str());
}

TEST(IntegerInference, WholeResNet20QatMixedFourToEightBits) {
  auto model = resnet20(10);
  std::map<std::string, int> bits;
  int i = 0;
  for (const QuantizableLayer& layer : model->quantizable_layers()) bits[layer.name] = 4 + i++ % 5;
  bits["conv1"] = bits["fc"] = 8;
  check_whole_model(QuantScheme::kQat, bits, {}, 4);
}

TEST(IntegerInference, WholeResNet20PtqMixedTwoToFourBitsWithRealValuedStem) {
  auto model = resnet20(10);
  std::map<std::string, int> bits;
  int i = 0;
  for (const QuantizableLayer& layer : model->quantizable_layers()) bits[layer.name] = 2 + i++ % 3;
  QuantizeOptions options;
  options.float_inputs = {"conv1"};
  check_whole_model(QuantScheme::kPtq, bits, options, 5);
}

TEST(PackedModel, BadModelsAndFiles) {
  Generator gen(6);
  auto plain = resnet20(10, gen);
  EXPECT_THAT([&] { pack_model(*plain); },
              ::testing::ThrowsMessage<Error>(HasSubstr("the model has no quantized layer")));
  auto uncalibrated = resnet20(10, gen);
  quantize_model(*uncalibrated, {{"fc", 8}});
  EXPECT_THAT([&] { pack_model(*uncalibrated); },
              ::testing::ThrowsMessage<Error>(HasSubstr("the input quantizer of layer \"fc\" has "
                                                        "seen no data")));

  // A valid file to break.
  auto model = resnet20(10, gen);
  quantize_model(*model, {{"conv1", 4}, {"fc", 8}});
  calibrate(*model, {2, 3, 32, 32}, gen, 1);
  PackedModel packed = pack_model(*model);
  const std::string path = temp_path("bad");
  ASSERT_TRUE(save_packed(path, packed).ok());
  absl::StatusOr<SafetensorsContents> raw = load_safetensors(path);
  ASSERT_TRUE(raw.ok());

  EXPECT_THAT(load_packed(path + ".missing").status().message(), HasSubstr(".missing"));
  const std::string plain_path = temp_path("plain");
  ASSERT_TRUE(plain->save(plain_path).ok());
  EXPECT_THAT(load_packed(plain_path).status().message(),
              HasSubstr("not a packed model (metadata \"ompq.format\" is missing"));
  std::remove(plain_path.c_str());

  MetadataMap version1 = raw->metadata;
  version1["ompq.format"] = "packed-v1";
  ASSERT_TRUE(save_safetensors(path, raw->tensors, version1).ok());
  EXPECT_THAT(load_packed(path).status().message(),
              HasSubstr("packed model of format \"packed-v1\" (conv weights in (C/groups, kh, "
                        "kw) order), which this version no longer reads (expected \"packed-v2\""));

  TensorMap without_scale = raw->tensors;
  without_scale.erase("fc.weight_scale");
  ASSERT_TRUE(save_safetensors(path, without_scale, raw->metadata).ok());
  EXPECT_THAT(load_packed(path).status().message(),
              HasSubstr("packed model lacks tensor \"fc.weight_scale\""));

  MetadataMap wrong_bits = raw->metadata;
  const std::string key = "\"bits\":4";
  const size_t at = wrong_bits["ompq.layers"].find(key);
  ASSERT_NE(at, std::string::npos);
  wrong_bits["ompq.layers"].replace(at, key.size(), "\"bits\":3");
  ASSERT_TRUE(save_safetensors(path, raw->tensors, wrong_bits).ok());
  EXPECT_THAT(load_packed(path).status().message(),
              HasSubstr("tensor \"conv1.weight_packed\" is u8 [16, 14] (expected u8 [16, 11])"));

  MetadataMap broken = raw->metadata;
  broken["ompq.layers"] = "[{\"name\": 3}]";
  ASSERT_TRUE(save_safetensors(path, raw->tensors, broken).ok());
  EXPECT_THAT(load_packed(path).status().message(), HasSubstr("malformed \"ompq.layers\""));
  std::remove(path.c_str());

  // The wrong architecture: nothing is modified.
  auto wide = resnet20(100, gen);
  absl::Status status = load_integer_model(*wide, packed);
  EXPECT_THAT(status.message(),
              HasSubstr("layer \"fc\" has weight shape [100, 64] in the model but "
                        "[10, 64] in the packed model"));
  for (const QuantizableLayer& layer : wide->quantizable_layers()) {
    auto conv = std::dynamic_pointer_cast<Conv2d>(layer.module);
    if (conv) EXPECT_EQ(conv->replacement(), nullptr);
  }
  PackedModel missing_state = packed;
  missing_state.float_state.erase("layer1.0.bn1.running_var");
  missing_state.float_state.emplace("extra", Tensor::zeros({1}));
  auto fresh = resnet20(10, gen);
  EXPECT_THAT(load_integer_model(*fresh, missing_state).message(),
              HasSubstr("1 missing: layer1.0.bn1.running_var; 1 unexpected: extra"));
  ASSERT_TRUE(load_integer_model(*fresh, packed).ok());
  EXPECT_THAT(load_integer_model(*fresh, packed).message(),
              HasSubstr("layer \"conv1\" is already replaced"));
}

}  // namespace
}  // namespace ompq::nn
