// Optimizers against torch.optim (1.13) golden values, param groups, skipped parameters, state_dict
// round trips (a resumed run continues exactly), and bad arguments.
#include "layers/optim.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/ops/optim.h"
#include "core/random.h"
#include "tests/temp_dir.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

// Golden values: p0 and the per-step gradients G below went through 4 steps of torch.optim in
// float32 (python3, torch 1.13):
//   p = torch.tensor(P0, requires_grad=True); opt = <optimizer>([p], ...)
//   for t in range(4): p.grad = torch.tensor(G[t]); opt.step()
// Tolerance 1e-6 (absolute; the values are O(1)).
const std::vector<float> kP0 = {0.5f, -1.0f, 1.5f, -2.0f, 0.25f};
const std::vector<std::vector<float>> kGrads = {{0.0f, 0.8415f, 0.9093f, 0.1411f, -0.7568f},
                                                {-0.9589f, -0.2794f, 0.657f, 0.9894f, 0.4121f},
                                                {-0.544f, -1.0f, -0.5366f, 0.4202f, 0.9906f},
                                                {0.6503f, -0.2879f, -0.9614f, -0.751f, 0.1499f}};
constexpr double kTol = 1e-6;

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

Tensor fresh_param() { return Tensor::from_vector(kP0, {5}).set_requires_grad(true); }

// Runs steps [first, last) of the golden gradient sequence.
void run_steps(Optimizer& opt, const Tensor& p, int first, int last) {
  for (int t = first; t < last; ++t) {
    p.set_grad(Tensor::from_vector(kGrads[t], {5}));
    opt.step();
  }
}

void expect_near(const Tensor& t, const std::vector<double>& expected, const char* what) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], kTol) << what << "[" << i << "]";
}

struct GoldenCase {
  const char* name;
  MakeOptimizer make;
  std::vector<double> param;
  std::vector<double> slot0;  // momentum_buffer or exp_avg (empty: none)
  std::vector<double> slot1;  // exp_avg_sq
};

std::vector<GoldenCase> golden_cases() {
  auto sgd = [](SgdOptions o) {
    return [o](std::vector<Tensor> p) { return std::make_unique<SGD>(std::move(p), o); };
  };
  auto adam = [](AdamOptions o) {
    return [o](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), o); };
  };
  return {
      // SGD(lr=0.1)
      {"sgd_plain",
       sgd({0.1}),
       {0.585260034, -0.927419901, 1.49317002, -2.07997012, 0.170419991},
       {},
       {}},
      // SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
      {"sgd_momentum_wd",
       sgd({0.1, 0.9, 0.0, 0.01}),
       {0.793255627, -0.98529613, 1.19480252, -2.30277419, 0.192694291},
       {-0.595631063, -0.837675333, -0.203894436, 0.458929479, 0.833919168},
       {}},
      // SGD(lr=0.05, momentum=0.8, dampening=0.3)
      {"sgd_dampening",
       sgd({0.05, 0.8, 0.3}),
       {0.593401611, -1.02726805, 1.3771342, -2.10550857, 0.258856028},
       {-0.27901718, -0.455853194, -0.213578358, 0.225106463, 0.456805199},
       {}},
      // SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.001)
      {"sgd_nesterov",
       sgd({0.1, 0.9, 0.0, 0.001, true}),
       {0.8529073, -0.92149514, 1.22818768, -2.36664653, 0.120882586},
       {-0.613762915, -0.804508626, -0.244996667, 0.523958921, 0.824584067},
       {}},
      // Adam(lr=0.01)
      {"adam",
       adam({0.01}),
       {0.518395841, -1.00788128, 1.47706521, -2.0290556, 0.255056202},
       {-0.0616008826, -0.0800760537, -0.0249290187, 0.0531455763, 0.0823533759},
       {0.00163618149, 0.00186579477, 0.00246707629, 0.00173719763, 0.00174329395}},
      // Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
      {"adam_wd",
       adam({0.02, 0.8, 0.99, 1e-6, 0.1}),
       {0.513961256, -1.00371337, 1.45151079, -2.00555611, 0.254005551},
       {-0.050310906, -0.227142185, -0.0142379068, -0.0597906448, 0.179369301},
       {0.0154973734, 0.0203078315, 0.0254128482, 0.0157151949, 0.0176534485}},
      // AdamW(lr=0.02, weight_decay=0.1)
      {"adamw",
       [](std::vector<Tensor> p) {
         AdamOptions o = AdamW::adamw_defaults();
         o.lr = 0.02;
         o.weight_decay = 0.1;
         return std::make_unique<AdamW>(std::move(p), o);
       },
       {0.532711685, -1.00764585, 1.44238067, -2.04193926, 0.257994741},
       {-0.0616008826, -0.0800760537, -0.0249290187, 0.0531455763, 0.0823533759},
       {0.00163618149, 0.00186579477, 0.00246707629, 0.00173719763, 0.00174329395}},
  };
}

TEST(OptimizerTest, MatchesTorchGoldenValues) {
  for (const GoldenCase& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    Tensor p = fresh_param();
    std::unique_ptr<Optimizer> opt = c.make({p});
    run_steps(*opt, p, 0, 4);
    expect_near(p, c.param, "param");
    TensorMap state = opt->state_dict();
    EXPECT_EQ(state.at("state.0.step").item<int64_t>(), 4);
    if (!c.slot0.empty()) {
      const char* slot = c.slot1.empty() ? "state.0.momentum_buffer" : "state.0.exp_avg";
      expect_near(state.at(slot), c.slot0, slot);
    }
    if (!c.slot1.empty()) expect_near(state.at("state.0.exp_avg_sq"), c.slot1, "exp_avg_sq");
    EXPECT_EQ(state.size(), 1 + (c.slot0.empty() ? 0 : 1) + (c.slot1.empty() ? 0 : 1));
  }
}

TEST(OptimizerTest, ResumingFromStateDictContinuesExactly) {
  for (const GoldenCase& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    Tensor p = fresh_param();
    std::unique_ptr<Optimizer> first = c.make({p});
    run_steps(*first, p, 0, 2);
    TensorMap saved = first->state_dict();
    // Through a file, as a checkpoint would.
    const testing::ScopedTempDir dir;
    const std::string path = dir.file("optim_state.safetensors");
    ASSERT_TRUE(save_safetensors(path, saved).ok());
    absl::StatusOr<SafetensorsContents> loaded = load_safetensors(path);
    ASSERT_TRUE(loaded.ok());

    std::unique_ptr<Optimizer> resumed = c.make({p});
    absl::Status status = resumed->load_state_dict(loaded->tensors);
    ASSERT_TRUE(status.ok()) << status;
    run_steps(*resumed, p, 2, 4);
    expect_near(p, c.param, "param after resume");
  }
}

TEST(OptimizerTest, ParamsWithoutGradAreSkippedAndKeepTheirState) {
  Tensor a = fresh_param();
  Tensor b = fresh_param();
  SGD opt({a, b}, SgdOptions{0.1, 0.9});
  run_steps(opt, a, 0, 1);  // b has no gradient
  EXPECT_EQ(b.to_vector<float>(), kP0);
  TensorMap state = opt.state_dict();
  EXPECT_EQ(state.count("state.1.step"), 0u);
  EXPECT_EQ(state.count("state.1.momentum_buffer"), 0u);
  EXPECT_EQ(state.at("state.0.step").item<int64_t>(), 1);
}

TEST(OptimizerTest, GroupsUseTheirOwnLrAndWeightDecay) {
  Tensor a = fresh_param();
  Tensor b = fresh_param();
  SGD opt(std::vector<ParamGroup>{{{a}, 0.1, 0.0}, {{b}, 0.05, 0.5}}, SgdOptions{});
  a.set_grad(Tensor::ones({5}));
  b.set_grad(Tensor::ones({5}));
  opt.step();
  for (size_t i = 0; i < kP0.size(); ++i) {
    EXPECT_NEAR(a.to_vector<float>()[i], kP0[i] - 0.1f * 1.0f, 1e-6);
    EXPECT_NEAR(b.to_vector<float>()[i], kP0[i] - 0.05f * (1.0f + 0.5f * kP0[i]), 1e-6);
  }
  EXPECT_EQ(opt.param_groups()[1].initial_lr, 0.05);
  opt.set_lr(0.0);
  opt.step();
  EXPECT_NEAR(a.to_vector<float>()[0], kP0[0] - 0.1f, 1e-6);
}

TEST(OptimizerTest, ZeroGradDropsGradients) {
  Tensor p = fresh_param();
  Adam opt({p}, AdamOptions{});
  p.set_grad(Tensor::ones({5}));
  opt.zero_grad();
  EXPECT_FALSE(p.grad().defined());
}

TEST(OptimizerTest, Float64ParametersUseTheSameMath) {
  Tensor p = Tensor::from_vector<double>({0.5, -1.0, 1.5, -2.0, 0.25}, {5}).set_requires_grad(true);
  SGD opt({p}, SgdOptions{0.1, 0.9, 0.0, 0.01});
  for (int t = 0; t < 4; ++t) {
    p.set_grad(Tensor::from_vector(kGrads[t], {5}).to(DType::kF64));
    opt.step();
  }
  expect_near(p, golden_cases()[1].param, "f64 param");
}

// ---- bad input
// -------------------------------------------------------------------------------------

TEST(OptimizerTest, RejectsInvalidHyperparameters) {
  auto sgd = [](SgdOptions o) { SGD opt({fresh_param()}, o); };
  auto adam = [](AdamOptions o) { Adam opt({fresh_param()}, o); };
  using ::testing::ThrowsMessage;
  EXPECT_THAT([&] { sgd({-0.1}); },
              ThrowsMessage<Error>(HasSubstr("SGD: invalid learning rate -0.1")));
  EXPECT_THAT(
      [&] {
        sgd({0.1, -0.9});
      },
      ThrowsMessage<Error>(HasSubstr("SGD: invalid momentum -0.9")));
  EXPECT_THAT(
      [&] {
        sgd({0.1, 0.9, 0.0, -1e-4});
      },
      ThrowsMessage<Error>(HasSubstr("SGD: invalid weight_decay")));
  EXPECT_THAT(
      [&] {
        sgd({0.1, 0.9, 1.5});
      },
      ThrowsMessage<Error>(HasSubstr("invalid dampening 1.5")));
  EXPECT_THAT(
      [&] {
        sgd({0.1, 0.0, 0.0, 0.0, true});
      },
      ThrowsMessage<Error>(HasSubstr("nesterov momentum requires momentum > 0")));
  EXPECT_THAT(
      [&] {
        sgd({0.1, 0.9, 0.1, 0.0, true});
      },
      ThrowsMessage<Error>(HasSubstr("dampening == 0")));
  EXPECT_THAT([&] { adam({-1.0}); },
              ThrowsMessage<Error>(HasSubstr("Adam: invalid learning rate")));
  EXPECT_THAT([&] { adam({1e-3, 1.0}); }, ThrowsMessage<Error>(HasSubstr("invalid beta1 1")));
  EXPECT_THAT(
      [&] {
        adam({1e-3, 0.9, -0.1});
      },
      ThrowsMessage<Error>(HasSubstr("invalid beta2 -0.1")));
  EXPECT_THAT(
      [&] {
        adam({1e-3, 0.9, 0.999, -1e-8});
      },
      ThrowsMessage<Error>(HasSubstr("invalid eps")));
  EXPECT_THAT(
      [&] {
        AdamW opt({fresh_param()}, AdamOptions{1e-3, 0.9, 0.999, 1e-8, -0.01});
      },
      ThrowsMessage<Error>(HasSubstr("AdamW: invalid weight_decay")));
}

TEST(OptimizerTest, RejectsBadParameterLists) {
  using ::testing::ThrowsMessage;
  EXPECT_THAT([] { SGD opt(std::vector<Tensor>{}, SgdOptions{}); },
              ThrowsMessage<Error>(HasSubstr("empty parameter list")));
  Tensor p = fresh_param();
  EXPECT_THAT(
      [&] {
        SGD opt({p, p}, SgdOptions{});
      },
      ThrowsMessage<Error>(HasSubstr("appears more than once")));
  EXPECT_THAT([] { SGD opt({Tensor::ones({2})}, SgdOptions{}); },
              ThrowsMessage<Error>(HasSubstr("not a leaf tensor that requires grad")));
  EXPECT_THAT([] { SGD opt({Tensor::zeros({2}, DType::kI32)}, SgdOptions{}); },
              ThrowsMessage<Error>(HasSubstr("has dtype i32")));
  Tensor wide = Tensor::zeros({3, 4}).set_requires_grad(true);
  EXPECT_THAT([&] { SGD opt({wide.detach().t().set_requires_grad(true)}, SgdOptions{}); },
              ThrowsMessage<Error>(HasSubstr("is not contiguous")));
}

TEST(OptimizerTest, StepRejectsALrMadeNegativeAfterConstruction) {
  Tensor p = fresh_param();
  SGD opt({p}, SgdOptions{0.1});
  opt.param_groups()[0].lr = -1.0;
  p.set_grad(Tensor::ones({5}));
  EXPECT_THAT([&] { opt.step(); },
              ::testing::ThrowsMessage<Error>(HasSubstr("invalid learning rate -1")));
  EXPECT_EQ(p.to_vector<float>(), kP0);
}

TEST(OptimizerTest, StepRejectsAGradientOfAnotherShapeOrDtype) {
  Tensor p = fresh_param();
  SGD opt({p}, SgdOptions{0.1});
  p.set_grad(Tensor::ones({4}));
  EXPECT_THAT([&] { opt.step(); },
              ::testing::ThrowsMessage<Error>(HasSubstr("gradient of shape [4]")));
  p.set_grad(Tensor::ones({5}, DType::kF64));
  EXPECT_THAT([&] { opt.step(); },
              ::testing::ThrowsMessage<Error>(HasSubstr("gradient has dtype f64")));
}

TEST(OptimizerTest, LoadStateDictListsEveryProblemAndChangesNothing) {
  Tensor a = fresh_param();
  Tensor b = fresh_param();
  Adam opt({a, b}, AdamOptions{});
  run_steps(opt, a, 0, 1);
  TensorMap good = opt.state_dict();

  TensorMap bad = good;
  bad["state.0.exp_avg"] = Tensor::zeros({4});           // wrong shape
  bad["state.1.exp_avg"] = Tensor::zeros({5});           // incomplete: no step, no exp_avg_sq
  bad["state.7.step"] = Tensor::scalar(1, DType::kI64);  // no such parameter
  bad["state.0.momentum_buffer"] = Tensor::zeros({5});   // not an Adam slot
  bad["lr"] = Tensor::scalar(0.1);                       // unknown name
  // check_state_dict finds the same problems (a checkpoint checks before the model loads).
  EXPECT_TRUE(opt.check_state_dict(good).ok());
  const absl::Status checked = opt.check_state_dict(bad);
  absl::Status status = opt.load_state_dict(bad);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(checked, status);
  std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("nothing was loaded"));
  EXPECT_THAT(message, HasSubstr("state.0.exp_avg (got [4] f32, parameter is [5] f32)"));
  EXPECT_THAT(message, HasSubstr("state.1.step, state.1.exp_avg_sq (missing)"));
  EXPECT_THAT(message, HasSubstr("state.7.step (unexpected name)"));
  EXPECT_THAT(message, HasSubstr("state.0.momentum_buffer (unexpected name)"));
  EXPECT_THAT(message, HasSubstr("lr (unexpected name)"));

  TensorMap bad_step = good;
  bad_step["state.0.step"] = Tensor::scalar(2.0);
  EXPECT_THAT(std::string(opt.load_state_dict(bad_step).message()),
              HasSubstr("state.0.step (expected an i64 scalar >= 1, got [] f32)"));

  // The state is as it was: one more step equals a second golden step.
  TensorMap after = opt.state_dict();
  EXPECT_EQ(after.size(), good.size());
  EXPECT_EQ(after.at("state.0.exp_avg").to_vector<float>(),
            good.at("state.0.exp_avg").to_vector<float>());
  EXPECT_EQ(after.at("state.0.step").item<int64_t>(), 1);
}

TEST(OptimizerOpsTest, FrontHalfChecksOperands) {
  Tensor p = Tensor::zeros({4});
  Tensor g = Tensor::ones({4});
  EXPECT_THAT(
      [&] {
        ops::sgd_step_(p, g, Tensor::zeros({3}), SgdOptions{0.1, 0.9}, false);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("momentum buffer of shape [3]")));
  EXPECT_THAT(
      [&] { ops::sgd_step_(p, g, Tensor::zeros({4}), SgdOptions{0.1}, false); },
      ::testing::ThrowsMessage<Error>(HasSubstr("momentum buffer was given with momentum 0")));
  EXPECT_THAT(
      [&] { ops::adam_step_(p, g, Tensor::zeros({4}), Tensor::zeros({4}), AdamOptions{}, 0); },
      ::testing::ThrowsMessage<Error>(HasSubstr("step 0 (expected >= 1)")));
  EXPECT_THAT([&] { ops::adam_step_(p, g, Tensor::zeros({4}), Tensor(), AdamOptions{}, 1); },
              ::testing::ThrowsMessage<Error>(HasSubstr("exp_avg_sq is undefined")));
}

TEST(OptimizerOpsTest, LargeTensorsMatchTheElementFormulaAcrossThreads) {
  // 100k elements span several parallel chunks; a non-contiguous gradient takes the copy path.
  const int64_t n = 100000;
  Generator gen(11);
  Tensor p = randn({n}, gen, DType::kF64);
  Tensor g = randn({2, n}, gen, DType::kF64).select(0, 1);
  Tensor m = randn({n}, gen, DType::kF64);
  Tensor v = rand({n}, gen, DType::kF64);
  std::vector<double> pv = p.to_vector<double>(), gv = g.to_vector<double>(),
                      mv = m.to_vector<double>(), vv = v.to_vector<double>();
  AdamOptions o{0.01, 0.9, 0.99, 1e-8, 0.05};
  ops::adam_step_(p, g, m, v, o, 3);
  AdamCoefficients<double> c = adam_coefficients<double>(o, 3);
  std::vector<double> got = p.to_vector<double>();
  for (int64_t i = 0; i < n; i += 997) {
    adam_update(&pv[i], gv[i], &mv[i], &vv[i], c);
    ASSERT_NEAR(got[i], pv[i], 1e-12) << i;
  }
}

}  // namespace
}  // namespace ompq::nn
