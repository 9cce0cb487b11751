// Batch normalization layers (torch.nn.BatchNorm1d / BatchNorm2d). Parameters weight [C] = 1 and
// bias [C] = 0 (when affine); buffers running_mean [C] = 0, running_var [C] = 1 and
// num_batches_tracked (i64 scalar, counts training forwards), named as in PyTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/ops/norm_math.h"
#include "layers/module.h"

namespace ompq::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;  // running = (1 - momentum) * running + momentum * batch
  bool affine = true;
};

class BatchNorm : public Module {
 public:
  // Training: normalizes with batch statistics and updates the running ones; eval: uses the
  // running statistics.
  Tensor forward(const Tensor& x) override;
  // activation(forward(x) + residual) in one pass (batch_norm_act); residual: x's shape, or
  // undefined for none. Models call this where torchvision's forward adds and activates after the
  // batch norm; the parameters, buffers and their names are the same.
  Tensor forward_act(const Tensor& x, NormActivation activation, const Tensor& residual = Tensor());

  const Tensor& weight() const { return weight_; }  // undefined unless affine
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }

  // Conv+BN folding (layers/quant/) moves the normalization, with the running statistics, into the
  // preceding convolution; a folded layer's forward() returns its input unchanged (and no longer
  // updates the running statistics), and its forward_act() activation(x + residual).
  void set_folded(bool folded) { folded_ = folded; }
  bool folded() const { return folded_; }
  // Set on a folded layer whose preceding integer layer already writes the next layer's input
  // codes with this layer's activation applied as a clip (load_integer_model): forward_act()
  // then returns its input, the codes, unchanged; a residual is refused unless the producer adds
  // it too (below).
  void set_activation_in_producer(bool in_producer) { activation_in_producer_ = in_producer; }
  // Set on a folded layer whose preceding integer layer already adds the residual (from its own
  // copy of the shortcut, load_integer_model): forward_act() then ignores the residual it is given.
  void set_residual_in_producer(bool in_producer) { residual_in_producer_ = in_producer; }

 protected:
  // `input_dims`: the ranks forward accepts ([N, C] and [N, C, L] for 1d, [N, C, H, W] for 2d).
  BatchNorm(const char* name, int64_t num_features, const BatchNormOptions& options,
            std::vector<int64_t> input_dims);

 private:
  const char* name_;
  int64_t num_features_;
  BatchNormOptions options_;
  std::vector<int64_t> input_dims_;
  Tensor weight_;
  Tensor bias_;
  Tensor running_mean_;
  Tensor running_var_;
  Tensor num_batches_tracked_;
  bool folded_ = false;
  bool activation_in_producer_ = false;
  bool residual_in_producer_ = false;
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& options = {});
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
};

}  // namespace ompq::nn
