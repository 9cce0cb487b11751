// Sequential: applies its children in order; they are named "0", "1", ... as in
// torch.nn.Sequential.
#pragma once

#include <memory>
#include <vector>

#include "layers/module.h"

namespace ompq::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);

  // Appends `module` under the name size().
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;

  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace ompq::nn
