// The reconstruction whose PTQ checkpoints the ptq_checkpoint fuzz target reads: the tiny model
// quantized for PTQ, its units as reconstruct_ptq takes them (stem left out), calibration images
// and short options. fuzz_make_seeds runs it to write the seed checkpoints, so that the seeds
// carry this reconstruction's identity and get past the loader's first check.
#pragma once

#include <memory>
#include <vector>

#include "core/random.h"
#include "solver/quantize/blocks.h"
#include "solver/quantize/ptq.h"
#include "solver/quantize/ptq_checkpoint.h"
#include "tests/fuzz/tiny_model.h"

namespace ompq::fuzz {

struct PtqFixture {
  std::shared_ptr<nn::ResNet> model = tiny_resnet();
  nn::QuantizedLayers layers;
  std::vector<solver::ReconstructionUnit> units;
  Tensor images;
  solver::PtqOptions options;
  solver::PtqIdentity identity;

  PtqFixture() {
    layers = nn::quantize_model(*model, uniform_bits(*model, 3),
                                solver::ptq_quantize_options(*model, 8));
    units = solver::reconstruction_units(*model, layers);
    units.erase(units.begin());  // the stem, which reconstruct_ptq leaves out by default
    Generator gen(2);
    images = randn({2, 3, 32, 32}, gen);
    options.weight_iterations = 2;
    options.activation_iterations = 2;
    options.batch_size = 2;
    options.init_images = 2;
    identity = solver::ptq_identity(*model, units, images, options);
  }

  // A state whose result lists the units, as reconstruct_ptq hands it to the loader.
  solver::PtqCheckpoint empty_state() const {
    solver::PtqCheckpoint state;
    for (const solver::ReconstructionUnit& unit : units) {
      solver::PtqUnitResult& u = state.result.units.emplace_back();
      u.name = unit.name;
      for (const auto& [name, layer] : unit.layers) u.layers.push_back(name);
    }
    return state;
  }
};

}  // namespace ompq::fuzz
