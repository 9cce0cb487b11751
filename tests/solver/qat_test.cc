#include "solver/quantize/qat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "data/synthetic.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pooling.h"
#include "layers/quant/packed_model.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

// stem conv + BN + ReLU -> conv + BN + ReLU -> global average pool -> fc: the smallest network
// with a stem, a searched layer and a classifier.
class TinyNet : public nn::Model {
 public:
  explicit TinyNet(Generator& gen) {
    Conv2dParams same;
    same.padding = {1, 1};
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(
                                          1, 6, std::array<int64_t, 2>{3, 3}, same, false, gen));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(6));
    relu1_ = register_module("relu1", std::make_shared<nn::ReLU>());
    conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(
                                          6, 8, std::array<int64_t, 2>{3, 3}, same, false, gen));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(8));
    relu2_ = register_module("relu2", std::make_shared<nn::ReLU>());
    pool_ = register_module("pool",
                            std::make_shared<nn::AdaptiveAvgPool2d>(std::array<int64_t, 2>{1, 1}));
    flatten_ = register_module("flatten", std::make_shared<nn::Flatten>());
    fc_ = register_module("fc", std::make_shared<nn::Linear>(8, 3, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = relu1_->forward(bn1_->forward(conv1_->forward(x)));
    y = relu2_->forward(bn2_->forward(conv2_->forward(y)));
    return fc_->forward(flatten_->forward(pool_->forward(y)));
  }
  Shape input_shape() const override { return {1, 8, 8}; }
  const nn::BatchNorm2d& bn2() const { return *bn2_; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<nn::ReLU> relu1_, relu2_;
  std::shared_ptr<nn::AdaptiveAvgPool2d> pool_;
  std::shared_ptr<nn::Flatten> flatten_;
  std::shared_ptr<nn::Linear> fc_;
};

data::DataLoader synthetic_loader(int64_t size, int64_t batch_size, bool shuffle) {
  data::SyntheticOptions options;
  options.size = size;
  options.input_shape = {1, 8, 8};
  options.num_classes = 3;
  options.noise = 0.5f;
  data::DataLoaderOptions loader;
  loader.batch_size = batch_size;
  loader.shuffle = shuffle;
  return data::DataLoader(std::make_shared<data::SyntheticDataset>(options), loader);
}

const std::map<std::string, int> kBits = {{"conv1", 8}, {"conv2", 3}, {"fc", 8}};
const std::set<std::string> kEdges = {"conv1", "fc"};

TEST(Qat, QuantizesWithEightBitEdgesAndTheGlobalActivationBits) {
  Generator gen(3);
  TinyNet model(gen);
  nn::QuantizedLayers layers = quantize_for_qat(model, kBits, kEdges, /*act_bits=*/5);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].second->input_quantizer()->spec().bits, 8);  // quant_input
  EXPECT_EQ(layers[1].second->input_quantizer()->spec().bits, 5);
  EXPECT_FALSE(layers[1].second->input_quantizer()->spec().is_signed);  // OMPQ: != 8 is unsigned
  EXPECT_EQ(layers[2].second->input_quantizer()->spec().bits, 8);       // quant_act_output
  EXPECT_EQ(layers[1].second->weight_quantizer().spec().bits, 3);
  EXPECT_TRUE(layers[1].second->weight_quantizer().spec().symmetric);
  EXPECT_NE(layers[0].second->folded_batch_norm(), nullptr);
  EXPECT_NE(layers[1].second->folded_batch_norm(), nullptr);
}

TEST(Qat, CosineLrPerIterationWithoutWarmup) {
  Generator gen(3);
  TinyNet model(gen);
  quantize_for_qat(model, kBits, kEdges, 8);
  QatOptions options;
  options.epochs = 2;
  options.lr = 0.1;
  QatTrainer trainer(model, /*steps_per_epoch=*/50, options);
  EXPECT_DOUBLE_EQ(trainer.schedule().lr(0, 0.1), 0.1);
  EXPECT_NEAR(trainer.schedule().lr(50, 0.1), 0.05, 1e-12);  // half of T = 2 * 50
  EXPECT_NEAR(trainer.schedule().lr(25, 0.1), 0.05 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(trainer.schedule().lr(100, 0.1), 0.0, 1e-12);
}

TEST(Qat, LowersTheLossKeepsBnStatisticsAndEndsOnTheGrid) {
  Generator gen(5);
  TinyNet model(gen);
  {  // Pretrained-like BN statistics, so that freezing them is visible.
    NoGradGuard no_grad;
    Tensor(model.bn2().running_mean()).copy_(ops::mul(randn({8}, gen), 0.1));
    Tensor(model.bn2().running_var()).copy_(ops::add(rand({8}, gen), 0.5));
  }
  const std::vector<float> mean_before = model.bn2().running_mean().to_vector<float>();
  const std::vector<float> gamma_before = model.bn2().weight().to_vector<float>();
  nn::QuantizedLayers layers = quantize_for_qat(model, kBits, kEdges, 8);
  data::DataLoader train = synthetic_loader(192, 16, true);
  data::DataLoader test = synthetic_loader(96, 32, false);
  {  // One forward sets the EMA ranges, so that evaluation can freeze them.
    NoGradGuard no_grad;
    model.forward(test.batches().next()->inputs);
  }
  QatOptions options;
  options.epochs = 4;
  options.lr = 0.05;
  options.train.log_interval = 1000;
  QatTrainer trainer(model, train.num_batches(), options);
  const EvalResult before = trainer.evaluate(test);
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    train.set_epoch(epoch);
    ASSERT_TRUE(trainer.train_epoch(train, epoch).ok());
  }
  const EvalResult after = trainer.evaluate(test);
  EXPECT_LT(after.loss, 0.7 * before.loss) << "before " << before.loss << ", after " << after.loss;
  EXPECT_GT(after.top1, before.top1);

  // fix_BN: the statistics stay, gamma trains through the folded weights.
  EXPECT_EQ(model.bn2().running_mean().to_vector<float>(), mean_before);
  EXPECT_NE(model.bn2().weight().to_vector<float>(), gamma_before);

  // Every quantized weight is an integer multiple of its channel's scale within the bits' range,
  // and the packed export holds exactly these values.
  nn::set_quantizers_frozen(model, true);
  nn::PackedModel packed = nn::pack_model(model);
  ASSERT_EQ(packed.layers.size(), layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    nn::QuantizedLayer& layer = *layers[i].second;
    const Tensor w = layer.quantized_weight().detach();
    const nn::QuantSpec& spec = layer.weight_quantizer().spec();
    const std::vector<float> values = w.to_vector<float>();
    const std::vector<float> scales = spec.scale.to_vector<float>();
    const int64_t per_channel = w.numel() / w.size(0);
    for (size_t j = 0; j < values.size(); ++j) {
      const double code = values[j] / scales[j / per_channel];
      ASSERT_NEAR(code, std::round(code), 1e-3) << layers[i].first << " element " << j;
      ASSERT_GE(std::round(code), spec.qmin());
      ASSERT_LE(std::round(code), spec.qmax());
    }
    EXPECT_EQ(packed.layers[i].dequantized_weight().to_vector<float>(), values) << layers[i].first;
  }
}

TEST(Qat, RejectsBadSettings) {
  Generator gen(3);
  TinyNet model(gen);
  EXPECT_THAT([&] { QatTrainer(model, 10, QatOptions{}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("no quantized layer")));
  EXPECT_THAT([&] { quantize_for_qat(model, kBits, kEdges, 9); },
              ::testing::ThrowsMessage<Error>(HasSubstr("act_bits 9 (expected 2..8)")));
  EXPECT_THAT(
      [&] {
        quantize_for_qat(model, {{"conv3", 4}}, {}, 8);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("\"conv3\" is not a quantizable layer")));
  quantize_for_qat(model, kBits, kEdges, 8);
  QatOptions bad;
  bad.lr = 0;
  EXPECT_THAT([&] { QatTrainer(model, 10, bad); },
              ::testing::ThrowsMessage<Error>(HasSubstr("lr 0")));
}

}  // namespace
}  // namespace ompq::solver
