#include "layers/sequential.h"

#include <string>
#include <utility>

namespace ompq::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  OMPQ_CHECK(index < modules_.size(), "Sequential: index ", index, " out of range for ",
             modules_.size(), " modules");
  return modules_[index];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = (*m)(y);
  return y;
}

}  // namespace ompq::nn
