// Writes the seeds of the fuzz targets whose files ompq itself writes, with ompq's own writers:
// safetensors, training and PTQ checkpoints, a packed model and bit configs, all of the tiny
// model (tests/fuzz/tiny_model.h), so that each seed is a few kilobytes. The seeds committed under
// tests/fuzz/corpus/ came from
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
// (the other targets' seeds are small hand-made files). Rerun it when a writer's format changes.
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/ops/optim_math.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "layers/optim.h"
#include "layers/quant/packed_model.h"
#include "runtime/init.h"
#include "solver/config/proto_io.h"
#include "solver/search/bit_config.h"
#include "solver/search/search.h"
#include "solver/space/search_space.h"
#include "solver/train/checkpoint.h"
#include "tests/fuzz/ptq_fixture.h"
#include "tests/fuzz/tiny_model.h"

namespace ompq::fuzz {
namespace {

namespace fs = std::filesystem;

// Exits with the status's message when it is an error: a seed that was not written is no seed.
void check(const absl::Status& status, const std::string& what) {
  if (status.ok()) return;
  std::fprintf(stderr, "fuzz_make_seeds: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

std::string target_file(const fs::path& corpus, const std::string& target,
                        const std::string& name) {
  fs::create_directories(corpus / target);
  return (corpus / target / name).string();
}

void write_safetensors_seeds(const fs::path& corpus) {
  Generator gen(3);
  const TensorMap tensors = {
      {"weight", randn({2, 3}, gen)},
      {"index", Tensor::from_vector<int64_t>({0, 1, 2}, {3})},
      {"codes", Tensor::from_vector<uint8_t>({1, 2, 3, 255}, {4})},
      {"scalar", Tensor::from_vector<double>({0.5}, {})},
      {"empty", Tensor::empty({0, 2})},
  };
  check(save_safetensors(target_file(corpus, "safetensors", "dtypes.safetensors"), tensors,
                         {{"format", "pt"}}),
        "safetensors seed");
  check(save_safetensors(target_file(corpus, "safetensors", "empty.safetensors"), {}),
        "empty safetensors seed");
}

// A mid-epoch checkpoint of a two-rank run, with SGD momentum buffers.
void write_checkpoint_seed(const fs::path& corpus) {
  std::shared_ptr<nn::ResNet> model = tiny_resnet();
  SgdOptions sgd;
  sgd.lr = 0.1;
  sgd.momentum = 0.9;
  nn::SGD optimizer(model->parameters(), sgd);
  for (const Tensor& p : model->parameters()) p.set_grad(Tensor::ones(p.shape()));
  optimizer.step();  // creates the momentum buffers
  solver::CheckpointState state;
  state.epochs_done = 2;
  state.steps_done = 3;
  state.rng_seed = 5;
  state.rng_offset = 17;
  state.world_size = 2;
  state.batch_size = 4;
  check(solver::save_checkpoint(target_file(corpus, "checkpoint", "mid_epoch.safetensors"), *model,
                                optimizer, state),
        "checkpoint seed");
}

// The finished reconstruction's checkpoint, then the packed export of the model it reconstructed.
void write_ptq_and_packed_seeds(const fs::path& corpus) {
  PtqFixture fixture;
  solver::PtqOptions options = fixture.options;
  options.checkpoint = target_file(corpus, "ptq_checkpoint", "finished.safetensors");
  check(solver::reconstruct_ptq(*fixture.model, fixture.layers, fixture.images, options).status(),
        "PTQ checkpoint seed");
  check(nn::save_packed(target_file(corpus, "packed_model", "tiny_resnet.safetensors"),
                        nn::pack_model(*fixture.model)),
        "packed model seed");
}

// One bit config per quantization mode, every unit at its mode's lowest bits.
void write_bit_config_seeds(const fs::path& corpus) {
  std::shared_ptr<nn::ResNet> model = tiny_resnet();
  const Shape input = model->input_shape();
  for (solver::QuantMode mode : {solver::QuantMode::kQat, solver::QuantMode::kPtq}) {
    absl::StatusOr<solver::SearchSpace> space =
        solver::build_search_space(*model, mode, input[1], input[2]);
    check(space.status(), "search space");
    solver::SearchOptions options;
    options.model_name = "resnet_tiny";
    options.mode = mode;
    options.allocation.solver = solver::SolverKind::kProjection;
    solver::SearchResult result;
    result.space = *space;
    for (const solver::SearchUnit& unit : space->units) {
      result.allocation.units.push_back(unit.name);
      result.allocation.bits.push_back(space->min_bits);
    }
    const std::string name = std::string(solver::quant_mode_name(mode)) + ".pbtxt";
    check(solver::write_text_proto(target_file(corpus, "bit_config", name),
                                   solver::make_bit_config(options, result)),
          "bit config seed");
  }
}

}  // namespace
}  // namespace ompq::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (the folder holding one folder per target)\n",
                 argv[0]);
    return 2;
  }
  ompq::init();
  const std::filesystem::path corpus = argv[1];
  ompq::fuzz::write_safetensors_seeds(corpus);
  ompq::fuzz::write_checkpoint_seed(corpus);
  ompq::fuzz::write_ptq_and_packed_seeds(corpus);
  ompq::fuzz::write_bit_config_seeds(corpus);
  return 0;
}
