// BRECQ reconstruction: the units every model splits into, a reconstruction of a small ResNet that
// must beat nearest rounding unit by unit and leave every weight on its grid, a state_dict round
// trip of the result, a run killed in either phase that resumes from its checkpoint and ends
// bitwise as an uninterrupted one, the refusal of another reconstruction's checkpoint, and the
// errors for bad inputs and options.
#include "solver/quantize/ptq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "layers/models/fashion_cnn.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "solver/quantize/blocks.h"
#include "tests/temp_dir.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor random_images(int64_t n, int64_t channels, int64_t size, uint64_t seed) {
  Generator gen(seed);
  return randn({n, channels, size, size}, gen);
}

std::map<std::string, int> uniform_bits(const nn::Model& model, int bits) {
  std::map<std::string, int> out;
  for (const nn::QuantizableLayer& l : model.quantizable_layers()) out[l.name] = bits;
  return out;
}

// A two-stage small-input ResNet (stem, 2 BasicBlocks, fc) with non-trivial BN statistics.
std::shared_ptr<nn::ResNet> tiny_resnet(uint64_t seed) {
  Generator gen(seed);
  nn::ResNetConfig config;
  config.blocks = {1, 1};
  config.planes = {8, 16};
  config.stem_channels = 8;
  config.small_stem = true;
  config.num_classes = 5;
  auto model = std::make_shared<nn::ResNet>(config, gen);
  NoGradGuard no_grad;
  for (const auto& [name, module] : model->named_modules()) {
    if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(module)) {
      const int64_t c = bn->num_features();
      Tensor(bn->running_mean()).copy_(ops::mul(randn({c}, gen), 0.1));
      Tensor(bn->running_var()).copy_(ops::add(rand({c}, gen), 0.5));
    }
  }
  return model;
}

// Quantizes `model` for PTQ (4-bit weights) and names its units; `layers` gets the quantized
// layers when given.
std::vector<std::string> unit_names(nn::Model& model, nn::QuantizedLayers* layers = nullptr) {
  nn::QuantizedLayers own;
  nn::QuantizedLayers& q = layers ? *layers : own;
  q = nn::quantize_model(model, uniform_bits(model, 4), ptq_quantize_options(model, 8));
  std::vector<std::string> names;
  for (const ReconstructionUnit& u : reconstruction_units(model, q)) names.push_back(u.name);
  return names;
}

TEST(ReconstructionUnits, ResNet20BlocksAndStandAloneLayers) {
  auto r20 = nn::resnet20(10);
  nn::QuantizedLayers layers;
  EXPECT_THAT(unit_names(*r20, &layers),
              ElementsAre("conv1", "layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.1",
                          "layer2.2", "layer3.0", "layer3.1", "layer3.2", "fc"));
  const std::vector<ReconstructionUnit> units = reconstruction_units(*r20, layers);
  std::vector<std::string> in_layer2_0;
  for (const auto& [name, layer] : units[4].layers) in_layer2_0.push_back(name);
  EXPECT_THAT(in_layer2_0,
              ElementsAre("layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0"));
  // The modules that run the units: the block itself, the classifier layer itself.
  EXPECT_NE(dynamic_cast<nn::BasicBlock*>(units[4].module.get()), nullptr);
  EXPECT_NE(dynamic_cast<nn::Linear*>(units.back().module.get()), nullptr);
}

TEST(ReconstructionUnits, ImageNetResNets) {  // resnet34 has resnet18's structure
  auto r18 = nn::resnet18(10, /*small_input=*/true);
  EXPECT_EQ(unit_names(*r18).size(), 1u + 8u + 1u);
  auto r50 = nn::resnet50(10, true);
  const std::vector<std::string> r50_units = unit_names(*r50);
  ASSERT_EQ(r50_units.size(), 1u + 16u + 1u);
  EXPECT_EQ(r50_units[1], "layer1.0");  // Bottleneck: 3 convs + the projection
}

TEST(ReconstructionUnits, MobileNetV2ConvStagesAndInvertedResiduals) {
  nn::MobileNetV2Options mo;
  mo.num_classes = 10;
  mo.small_input = true;
  auto mobilenet = std::make_shared<nn::MobileNetV2>(mo);
  const std::vector<std::string> units = unit_names(*mobilenet);
  ASSERT_EQ(units.size(), 20u);  // stem stage, 17 inverted residuals, last conv stage, classifier
  EXPECT_EQ(units.front(), "features.0");
  EXPECT_EQ(units[1], "features.1");
  EXPECT_EQ(units[18], "features.18");
  EXPECT_EQ(units.back(), "classifier");
}

TEST(ReconstructionUnits, FashionCnnLayers) {
  auto cnn = std::make_shared<nn::FashionCnn>(10);
  EXPECT_THAT(unit_names(*cnn), ElementsAre("conv1", "conv2", "fc"));
}

TEST(ReconstructionUnits, LayersOfAnotherModelAreRejected) {
  auto a = nn::resnet20(10), b = nn::resnet20(10);
  nn::QuantizedLayers layers =
      nn::quantize_model(*a, uniform_bits(*a, 4), ptq_quantize_options(*a, 8));
  EXPECT_THAT([&] { reconstruction_units(*b, layers); },
              ::testing::ThrowsMessage<Error>(HasSubstr(
                  "reconstruction_units: \"conv1\" is not a quantized layer of the model")));
}

// Every quantized weight is a grid point of its quantizer: (w / s + z) is an integer in range.
void expect_on_grid(nn::QuantizedLayer& layer, const std::string& name) {
  const nn::QuantSpec& spec = layer.weight_quantizer().spec();
  const Tensor w = layer.quantized_weight();
  const int64_t channels = spec.scale.numel();
  const std::vector<float> wv = w.to_vector<float>(), s = spec.scale.to_vector<float>(),
                           z = spec.zero_point.to_vector<float>();
  const int64_t per_channel = w.numel() / channels;
  for (size_t i = 0; i < wv.size(); ++i) {
    const int64_t c = static_cast<int64_t>(i) / per_channel;
    const float code = wv[i] / s[c] + z[c];
    ASSERT_NEAR(code, std::nearbyint(code), 1e-3) << name << " element " << i;
    ASSERT_GE(std::nearbyint(code), spec.qmin()) << name;
    ASSERT_LE(std::nearbyint(code), spec.qmax()) << name;
  }
}

TEST(ReconstructPtq, BeatsNearestRoundingAndLeavesAPlainQuantizedModel) {
  auto model = tiny_resnet(1);
  const nn::QuantizedLayers layers =
      nn::quantize_model(*model, uniform_bits(*model, 2), ptq_quantize_options(*model, 8));
  const Tensor images = random_images(64, 3, 8, 2);
  PtqOptions options;
  options.weight_iterations = 150;
  options.activation_iterations = 30;
  options.warmup = 0.2;
  options.batch_size = 16;
  std::set<std::pair<int, std::string>> seen;
  int64_t last_weight_iteration = 0;
  options.on_progress = [&](const PtqProgress& p) {
    seen.emplace(p.phase, p.unit);
    if (p.phase == 1) last_weight_iteration = p.iteration;
    EXPECT_EQ(p.num_units, 3);
    EXPECT_TRUE(std::isfinite(p.reconstruction_loss));
  };
  absl::StatusOr<PtqResult> result = reconstruct_ptq(*model, layers, images, options);
  ASSERT_TRUE(result.ok()) << result.status();

  // The stem is not reconstructed; every other unit is, and AdaRound beats nearest rounding.
  ASSERT_EQ(result->units.size(), 3u);
  EXPECT_EQ(result->units[0].name, "layer1.0");
  EXPECT_EQ(result->units[2].name, "fc");
  for (const PtqUnitResult& u : result->units) {
    EXPECT_GT(u.nearest_error, 0.0) << u.name;
    EXPECT_LT(u.adaround_error, 0.9 * u.nearest_error) << u.name;
  }
  EXPECT_EQ(seen.size(), 6u);  // both phases of all three units
  EXPECT_EQ(last_weight_iteration, 150);

  // Baked: rounding to nearest again, every weight a grid point, activations quantized with
  // positive learned steps.
  for (const auto& [name, layer] : layers) {
    EXPECT_FALSE(layer->weight_quantizer().adaptive_rounding()) << name;
    EXPECT_TRUE(layer->weight_quantizer().enabled()) << name;
    expect_on_grid(*layer, name);
    if (nn::ActivationQuantizer* q = layer->input_quantizer()) {
      EXPECT_TRUE(q->enabled());
      EXPECT_GT(q->spec().scale.item<float>(), 0.0f) << name;
    }
  }
  EXPECT_FALSE(model->is_training());
  for (const Tensor& p : model->parameters()) EXPECT_TRUE(p.requires_grad());

  // The state_dict alone reproduces the reconstructed model.
  NoGradGuard no_grad;
  const std::vector<float> logits = model->forward(images).to_vector<float>();
  auto fresh = tiny_resnet(7);
  nn::quantize_model(*fresh, uniform_bits(*fresh, 2), ptq_quantize_options(*fresh, 8));
  ASSERT_TRUE(fresh->load_state_dict(model->state_dict()).ok());
  fresh->eval();
  EXPECT_EQ(fresh->forward(images).to_vector<float>(), logits);
}

TEST(ReconstructPtq, KeepsNearestRoundingWhereTheLearnedRoundingIsWorse) {
  auto model = tiny_resnet(8);
  const nn::QuantizedLayers layers =
      nn::quantize_model(*model, uniform_bits(*model, 4), ptq_quantize_options(*model, 8));
  PtqOptions options;
  options.weight_iterations = 10;
  options.weight_lr = 5.0;  // scrambles the rounding variables
  options.warmup = 0.0;
  options.activation_iterations = 0;
  absl::StatusOr<PtqResult> result =
      reconstruct_ptq(*model, layers, random_images(32, 3, 8, 9), options);
  ASSERT_TRUE(result.ok()) << result.status();
  int kept = 0;
  for (const PtqUnitResult& u : result->units) {
    EXPECT_EQ(u.kept_nearest, u.adaround_error > u.nearest_error) << u.name;
    kept += u.kept_nearest;
  }
  ASSERT_GT(kept, 0);
  // Those units' weights are rounded to nearest.
  for (const PtqUnitResult& u : result->units) {
    if (!u.kept_nearest) continue;
    for (const auto& [name, layer] : layers) {
      if (name.rfind(u.name, 0) != 0) continue;
      const Tensor folded = layer->weight_and_bias().weight;
      EXPECT_EQ(layer->quantized_weight().to_vector<float>(),
                nn::fake_quantize(folded, layer->weight_quantizer().spec()).to_vector<float>())
          << name;
    }
  }
}

TEST(ReconstructPtq, ActivationPhaseMovesTheStepSizes) {
  auto model = tiny_resnet(3);
  const nn::QuantizedLayers layers =
      nn::quantize_model(*model, uniform_bits(*model, 4), ptq_quantize_options(*model, 4));
  const Tensor images = random_images(32, 3, 8, 4);
  PtqOptions options;
  options.weight_iterations = 0;  // activations only
  options.activation_iterations = 0;
  ASSERT_TRUE(reconstruct_ptq(*model, layers, images, options).ok());
  std::vector<float> initial;
  for (const auto& [name, layer] : layers) {
    if (layer->input_quantizer())
      initial.push_back(layer->input_quantizer()->spec().scale.item<float>());
  }
  options.activation_iterations = 40;
  options.activation_lr = 1e-2;
  ASSERT_TRUE(reconstruct_ptq(*model, layers, images, options).ok());
  std::vector<float> learned;
  for (const auto& [name, layer] : layers) {
    if (layer->input_quantizer())
      learned.push_back(layer->input_quantizer()->spec().scale.item<float>());
  }
  ASSERT_EQ(learned.size(), initial.size());
  int moved = 0;
  for (size_t i = 0; i < learned.size(); ++i) moved += learned[i] != initial[i];
  EXPECT_EQ(moved, static_cast<int>(learned.size()));
}

// A fresh tiny ResNet (the same for the same seed) quantized for PTQ at `bits`.
struct PtqSetup {
  std::shared_ptr<nn::ResNet> model;
  nn::QuantizedLayers layers;
};
PtqSetup ptq_setup(uint64_t seed, int bits) {
  PtqSetup s;
  s.model = tiny_resnet(seed);
  s.layers =
      nn::quantize_model(*s.model, uniform_bits(*s.model, bits), ptq_quantize_options(*s.model, 8));
  return s;
}

// Quick options with a progress report at every iteration.
PtqOptions short_options(const std::string& checkpoint) {
  PtqOptions options;
  options.weight_iterations = 20;
  options.activation_iterations = 10;
  options.batch_size = 16;
  options.init_images = 16;
  options.progress_interval = 1;
  options.checkpoint = checkpoint;
  return options;
}

// Thrown from a progress callback: the reconstruction stops where it is, as if killed.
struct Killed {};

std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

void expect_same_state(const nn::Model& actual, const nn::Model& expected) {
  const TensorMap a = actual.state_dict(), e = expected.state_dict();
  ASSERT_EQ(a.size(), e.size());
  for (const auto& [name, t] : e) {
    ASSERT_EQ(a.count(name), 1u) << name;
    EXPECT_EQ(bytes_of(a.at(name)), bytes_of(t)) << name;
  }
}

void expect_same_results(const PtqResult& actual, const PtqResult& expected) {
  ASSERT_EQ(actual.units.size(), expected.units.size());
  for (size_t i = 0; i < expected.units.size(); ++i) {
    const PtqUnitResult &a = actual.units[i], &e = expected.units[i];
    EXPECT_EQ(a.name, e.name);
    EXPECT_EQ(a.layers, e.layers);
    EXPECT_EQ(a.nearest_error, e.nearest_error) << e.name;
    EXPECT_EQ(a.adaround_error, e.adaround_error) << e.name;
    EXPECT_EQ(a.kept_nearest, e.kept_nearest) << e.name;
  }
}

// Killed in the middle of a unit of either phase, the same call resumes after the last finished
// unit and ends bitwise where an uninterrupted run (without a checkpoint) ends; a finished
// checkpoint only bakes the rounding again.
TEST(ReconstructPtq, KilledRunResumesAndEndsExactlyAsAnUninterruptedOne) {
  const Tensor images = random_images(32, 3, 8, 12);
  PtqSetup reference = ptq_setup(11, 2);
  absl::StatusOr<PtqResult> expected =
      reconstruct_ptq(*reference.model, reference.layers, images, short_options(""));
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->units.size(), 3u);  // layer1.0, layer2.0, fc

  struct Case {
    int killed_phase;
    int64_t killed_unit;
    std::vector<int64_t> resumed_at;  // phase, units done, units
  };
  for (const Case& c : {Case{1, 1, {1, 1, 3}}, Case{2, 0, {1, 3, 3}}, Case{2, 2, {2, 2, 3}}}) {
    SCOPED_TRACE(::testing::Message()
                 << "killed in phase " << c.killed_phase << " unit " << c.killed_unit);
    testing::ScopedTempDir dir;
    PtqOptions options = short_options(dir.file("ptq.safetensors"));
    options.on_progress = [&c](const PtqProgress& p) {
      if (p.phase == c.killed_phase && p.unit_index == c.killed_unit && p.iteration == 3) {
        throw Killed{};
      }
    };
    PtqSetup killed = ptq_setup(11, 2);
    EXPECT_THROW((void)reconstruct_ptq(*killed.model, killed.layers, images, options), Killed);

    options.on_progress = nullptr;
    std::vector<int64_t> resumed_at;
    options.on_resume = [&resumed_at](int phase, int64_t done, int64_t units) {
      resumed_at = {phase, done, units};
    };
    PtqSetup resumed = ptq_setup(11, 2);
    absl::StatusOr<PtqResult> result =
        reconstruct_ptq(*resumed.model, resumed.layers, images, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(resumed_at, c.resumed_at);
    expect_same_results(*result, *expected);
    expect_same_state(*resumed.model, *reference.model);

    PtqSetup finished = ptq_setup(11, 2);
    result = reconstruct_ptq(*finished.model, finished.layers, images, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(resumed_at, (std::vector<int64_t>{2, 3, 3}));
    expect_same_results(*result, *expected);
    expect_same_state(*finished.model, *reference.model);
  }
}

TEST(ReconstructPtq, RefusesTheCheckpointOfAnotherReconstruction) {
  testing::ScopedTempDir dir;
  const std::string checkpoint = dir.file("ptq.safetensors");
  const Tensor images = random_images(32, 3, 8, 12);
  PtqOptions options = short_options(checkpoint);
  options.weight_iterations = 4;
  options.activation_iterations = 0;
  PtqSetup first = ptq_setup(11, 2);
  ASSERT_TRUE(reconstruct_ptq(*first.model, first.layers, images, options).ok());

  auto refusal = [&](uint64_t seed, int bits, const Tensor& x, const PtqOptions& o) {
    PtqSetup other = ptq_setup(seed, bits);
    absl::StatusOr<PtqResult> r = reconstruct_ptq(*other.model, other.layers, x, o);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    return std::string(r.status().message());
  };
  const std::string another = checkpoint + " is the checkpoint of another PTQ reconstruction (";
  PtqOptions longer = options;
  longer.weight_iterations = 30;
  EXPECT_THAT(refusal(11, 2, images, longer),
              HasSubstr(another + "weight_iterations: 4 there, 30 here); delete it to start this"));
  EXPECT_THAT(refusal(11, 3, images, options),
              HasSubstr(another + "layer_bits: layer1.0.conv1:w2a8 there, layer1.0.conv1:w3a8 "
                                  "here)"));
  EXPECT_THAT(refusal(12, 2, images, options), HasSubstr(another + "model_checksum: "));
  EXPECT_THAT(refusal(11, 2, random_images(32, 3, 8, 13), options),
              HasSubstr(another + "calibration_images: 32x3x8x8 f32 checksum "));
  PtqOptions with_stem = options;
  with_stem.reconstruct_stem = true;
  EXPECT_THAT(refusal(11, 2, images, with_stem),
              HasSubstr(another + "units: layer1.0 there, conv1 here)"));

  // Not a PTQ checkpoint at all.
  ASSERT_TRUE(first.model->save(checkpoint).ok());
  PtqSetup other = ptq_setup(11, 2);
  absl::StatusOr<PtqResult> r = reconstruct_ptq(*other.model, other.layers, images, options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr(checkpoint + ": not an ompq PTQ checkpoint"));
}

// A reader that does not write (the ranks of a multi-process run but one) leaves no file.
TEST(ReconstructPtq, ReadOnlyCheckpointIsNeverWritten) {
  testing::ScopedTempDir dir;
  PtqOptions options = short_options(dir.file("ptq.safetensors"));
  options.weight_iterations = 2;
  options.activation_iterations = 1;
  options.write_checkpoint = false;
  PtqSetup setup = ptq_setup(11, 2);
  ASSERT_TRUE(
      reconstruct_ptq(*setup.model, setup.layers, random_images(16, 3, 8, 1), options).ok());
  EXPECT_FALSE(std::filesystem::exists(options.checkpoint));
}

TEST(ReconstructPtq, BadInputs) {
  auto model = tiny_resnet(5);
  const nn::QuantizedLayers layers =
      nn::quantize_model(*model, uniform_bits(*model, 3), ptq_quantize_options(*model, 8));
  PtqOptions options;
  options.weight_iterations = 2;
  options.activation_iterations = 2;
  const Tensor images = random_images(4, 3, 8, 6);
  auto message = [&](const Tensor& x, const PtqOptions& o, const nn::QuantizedLayers& l) {
    absl::StatusOr<PtqResult> r = reconstruct_ptq(*model, l, x, o);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  EXPECT_THAT(message(Tensor(), options, layers),
              HasSubstr("reconstruct_ptq: no calibration images"));
  EXPECT_THAT(message(Tensor::zeros({0, 3, 8, 8}), options, layers),
              HasSubstr("no calibration images"));
  EXPECT_THAT(message(random_images(4, 1, 8, 6), options, layers),
              HasSubstr("calibration images of shape [4, 1, 8, 8] and dtype f32 (expected floating "
                        "[N, 3, H, W]"));
  EXPECT_THAT(message(Tensor::zeros({4, 3, 8}), options, layers),
              HasSubstr("calibration images of shape [4, 3, 8]"));
  EXPECT_THAT(message(images, options, {}), HasSubstr("no quantized layers"));
  PtqOptions bad = options;
  bad.batch_size = 0;
  EXPECT_THAT(message(images, bad, layers), HasSubstr("batch_size 0"));
  bad = options;
  bad.warmup = 1.5;
  EXPECT_THAT(message(images, bad, layers),
              HasSubstr("warmup 1.5 (expected a fraction in [0, 1))"));
  bad = options;
  bad.beta_end = 0.5;
  EXPECT_THAT(message(images, bad, layers), HasSubstr("beta from 20 to 0.5"));
  bad = options;
  bad.weight_lr = 0;
  EXPECT_THAT(message(images, bad, layers), HasSubstr("learning rates 0 (weights)"));

  // Weight bits out of range never get as far: quantize_model refuses them.
  auto other = tiny_resnet(6);
  std::map<std::string, int> bits = uniform_bits(*other, 4);
  bits["fc"] = 9;
  EXPECT_THAT([&] { nn::quantize_model(*other, bits, ptq_quantize_options(*other, 8)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("has 9 weight bits (expected 2..8)")));
  // QAT-quantized layers are not PTQ's.
  nn::QuantizeOptions qat;
  const nn::QuantizedLayers qat_layers = nn::quantize_model(*other, uniform_bits(*other, 4), qat);
  absl::StatusOr<PtqResult> r = reconstruct_ptq(*other, qat_layers, images, options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("layer \"conv1\" is not quantized with the PTQ scheme"));
}

}  // namespace
}  // namespace ompq::solver
