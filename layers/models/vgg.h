// VGG with batch normalization, with torchvision's architecture and parameter names
// (torchvision.models.vgg, "_bn" models), so converted torchvision checkpoints load unchanged:
//   features      per conv: 3x3 conv (padding 1, with bias) + BN + ReLU, three entries
//                 (features.0.weight, features.0.bias, features.1.running_mean, ...); a 2x2/2
//                 max-pool after each stage, one entry
//   avgpool       adaptive average pool to 7x7 (no parameters)
//   classifier    Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
//                 Linear(4096, num_classes) (classifier.0.weight, classifier.3.*, classifier.6.*)
// vgg16_bn has 138,365,992 parameters with 1000 classes.
//
// Initialization as torchvision: convs kaiming_normal_(mode="fan_out", nonlinearity="relu") with
// bias 0, BN weight 1 and bias 0, Linear weight N(0, 0.01) and bias 0.
//
// Input sizes: the five max-pools take any side from 32 px up. Below 224 px the adaptive pool
// replicates the last feature map to 7x7 (at 32 px a 1x1 map, 49 times), as in torchvision, so
// the classifier and every parameter are the same at every size. The small-input variant is
// therefore this very network; it only declares 32 px as its input_shape().
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "layers/models/model.h"
#include "layers/sequential.h"

namespace ompq::nn {

struct VggOptions {
  // Output channels of each conv, per stage; a max-pool follows every stage.
  std::vector<std::vector<int64_t>> stages = {
      {64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}};
  int64_t num_classes = 1000;
  double dropout = 0.5;      // after each hidden classifier layer, in training mode
  bool small_input = false;  // declares [3, 32, 32] as the input shape (see above)
};

class Vgg : public Model {
 public:
  // `gen` draws the initial weights and, later, the dropout masks: it must outlive the model.
  explicit Vgg(const VggOptions& options = {}, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  // [3, 32, 32] for the small-input variant, else [3, 224, 224].
  Shape input_shape() const override;

 private:
  VggOptions options_;
  std::shared_ptr<Sequential> features_;
  std::shared_ptr<Module> avgpool_;
  std::shared_ptr<Sequential> classifier_;
};

std::shared_ptr<Vgg> vgg16_bn(int64_t num_classes = 1000, bool small_input = false,
                              Generator& gen = default_generator());

}  // namespace ompq::nn
