#include "apps/bench_packed.h"

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/random.h"
#include "layers/models/registry.h"
#include "layers/quant/integer_layer.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quantize_model.h"
#include "solver/quantize/ptq.h"
#include "solver/quantize/qat.h"
#include "solver/search/bit_config.h"
#include "solver/search/search.h"
#include "solver/space/cost_model.h"

namespace ompq {
namespace {

using solver::QuantMode;

struct PackedCase {
  std::string model;
  int64_t batch, resolution;
  QuantMode mode;
  std::string packed_path;  // where the packed model is also saved ("": nowhere)

  std::string name() const {
    return absl::StrCat(model, "/", batch, "/", resolution, "/", solver::quant_mode_name(mode));
  }
  std::shared_ptr<nn::Model> make(Generator& gen) const {
    return make_benchmark_model(model, /*channels_last=*/true, gen);
  }
};

template <typename T>
T value_or_die(absl::StatusOr<T> v, const std::string& what) {
  OMPQ_CHECK(v.ok(), "ompq_bench: ", what, ": ", v.status().message());
  return *std::move(v);
}

struct PackedSetup {
  std::shared_ptr<nn::Model> model;  // integer inference
  double size_mib = 0;
  int eight_bit_layers = 0;
};

// The experiment's bits for the case's recipe (see bench_packed.h), its quantized and calibrated
// model packed, and the packed model loaded into a fresh instance.
PackedSetup make_packed(const PackedCase& c, Generator& gen) {
  NoGradGuard no_grad;
  std::shared_ptr<nn::Model> model = c.make(gen);
  const bool qat = c.mode == QuantMode::kQat;
  solver::SearchOptions options;
  options.model_name = c.model;
  options.mode = c.mode;
  options.allocation.solver = qat ? solver::SolverKind::kLp : solver::SolverKind::kProjection;
  options.allocation.rounding = solver::reference_rounding(c.model);
  const solver::SearchSpace space = value_or_die(
      solver::build_search_space(*model, c.mode, c.resolution, c.resolution), "search space");
  options.allocation.budget_mib =
      (qat ? 0.75 : 0.375) * solver::model_size_mib(space, std::vector<int>(space.units.size(), 8));
  const Tensor search_images = qat ? randn({8, 3, c.resolution, c.resolution}, gen) : Tensor();
  const solver::SearchResult result =
      value_or_die(solver::search(*model, search_images, options), "search");
  const solver::LayerBitsPlan plan = value_or_die(
      solver::plan_from_bit_config(solver::make_bit_config(options, result), *model, "search"),
      "bit config");
  if (qat) {
    solver::quantize_for_qat(*model, plan.weight_bits, plan.edge_layers, 8);
  } else {
    nn::quantize_model(*model, plan.weight_bits, solver::ptq_quantize_options(*model, 8));
  }
  for (int i = 0; i < 2; ++i) model->forward(randn({4, 3, c.resolution, c.resolution}, gen));
  nn::set_quantizers_frozen(*model, true);
  PackedSetup setup;
  setup.size_mib = result.allocation.size_mib;
  for (const auto& [name, bits] : plan.weight_bits) setup.eight_bit_layers += bits == 8;
  setup.model = c.make(gen);
  const nn::PackedModel packed = nn::pack_model(*model);
  if (!c.packed_path.empty()) {
    const absl::Status saved = nn::save_packed(c.packed_path, packed);
    OMPQ_CHECK(saved.ok(), "ompq_bench: --packed_dir: ", saved.message());
  }
  const absl::Status loaded = nn::load_integer_model(*setup.model, packed);
  OMPQ_CHECK(loaded.ok(), "ompq_bench: ", loaded.message());
  return setup;
}

void infer_packed(benchmark::State& state, PackedCase c) {
  Generator gen(9);
  const PackedSetup setup = make_packed(c, gen);
  NoGradGuard no_grad;
  const Tensor x = randn({c.batch, 3, c.resolution, c.resolution}, gen);
  auto step = [&] { benchmark::DoNotOptimize((*setup.model)(x).data_ptr()); };
  step();  // primitives and reordered weights for this shape
  for (auto _ : state) step();
  state.counters["items_per_second"] = benchmark::Counter(
      static_cast<double>(c.batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["size_mib"] = setup.size_mib;
  state.counters["eight_bit_layers"] = setup.eight_bit_layers;
}

}  // namespace

int64_t benchmark_num_classes(const std::string& model) { return model == "resnet20" ? 10 : 1000; }

std::shared_ptr<nn::Model> make_benchmark_model(const std::string& model, bool channels_last,
                                                Generator& gen) {
  nn::ModelSpec spec;
  spec.name = model;
  spec.num_classes = benchmark_num_classes(model);
  absl::StatusOr<std::shared_ptr<nn::Model>> m = nn::make_model(spec, gen);
  OMPQ_CHECK(m.ok(), "ompq_bench: ", m.status().message());
  (*m)->set_channels_last(channels_last);
  (*m)->eval();
  return *m;
}

void register_packed_benchmarks(int64_t batch, int64_t iterations, const std::string& packed_dir) {
  const std::pair<const char*, int64_t> models[] = {
      {"resnet20", 32}, {"resnet18", 224}, {"resnet50", 224}, {"mobilenet_v2", 224}};
  for (const auto& [model, resolution] : models) {
    for (QuantMode mode : {QuantMode::kQat, QuantMode::kPtq}) {
      PackedCase c{model, batch, resolution, mode, ""};
      if (!packed_dir.empty()) {
        c.packed_path = absl::StrCat(packed_dir, "/", model, "_", resolution, "_",
                                     solver::quant_mode_name(mode), ".safetensors");
      }
      // As BM_Infer: a fixed count after the untimed warm-up keeps a case to tens of seconds.
      const int64_t default_iterations = resolution <= 32 ? 40 : 5;
      benchmark::RegisterBenchmark(("BM_InferPacked/" + c.name()).c_str(), infer_packed, c)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(iterations > 0 ? iterations : default_iterations);
    }
  }
}

}  // namespace ompq
