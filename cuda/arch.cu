#include "absl/strings/str_cat.h"
#include "cuda/arch.h"

namespace ompq::cuda {
namespace {
// nvcc defines __CUDA_ARCH_LIST__ as the compiled virtual architectures, e.g. 900 for sm_90.
constexpr int kArchs[] = {__CUDA_ARCH_LIST__};
}  // namespace

int min_compiled_arch() {
  int lowest = kArchs[0];
  for (int arch : kArchs) lowest = arch < lowest ? arch : lowest;
  return lowest / 10;
}

std::string compiled_arch_names() {
  std::string names;
  for (int arch : kArchs) absl::StrAppend(&names, names.empty() ? "" : ", ", "sm_", arch / 10);
  return names;
}

}  // namespace ompq::cuda
