// compare_tensors: the check of end-to-end tests that compare a tensor an app wrote with a golden.
//   compare_tensors ACTUAL.safetensors NAME EXPECTED.safetensors NAME MAX_RELATIVE_ERROR
// Passes (exit 0) when both tensors have the same shape and max|actual - expected| / max|expected|
// is at most MAX_RELATIVE_ERROR; prints the error either way, and exits 1 otherwise.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "runtime/init.h"

namespace {

bool read_tensor(const std::string& path, const std::string& name, ompq::Tensor* out) {
  auto contents = ompq::load_safetensors(path);
  if (!contents.ok()) {
    std::fprintf(stderr, "FAIL: %s\n", std::string(contents.status().message()).c_str());
    return false;
  }
  auto it = contents->tensors.find(name);
  if (it == contents->tensors.end()) {
    std::fprintf(stderr, "FAIL: %s has no tensor \"%s\"\n", path.c_str(), name.c_str());
    return false;
  }
  *out = it->second;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s ACTUAL NAME EXPECTED NAME MAX_RELATIVE_ERROR\n", argv[0]);
    return 2;
  }
  ompq::init();
  ompq::Tensor actual, expected;
  if (!read_tensor(argv[1], argv[2], &actual) || !read_tensor(argv[3], argv[4], &expected))
    return 1;
  if (actual.shape() != expected.shape()) {
    std::fprintf(stderr, "FAIL: shape %s, expected %s\n", ompq::shape_str(actual.shape()).c_str(),
                 ompq::shape_str(expected.shape()).c_str());
    return 1;
  }
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(a[i] - e[i]));
    if (std::isnan(a[i]) != std::isnan(e[i])) max_diff = INFINITY;
    max_ref = std::max(max_ref, std::abs(e[i]));
  }
  const double error = max_ref > 0 ? max_diff / max_ref : max_diff;
  const double bound = std::atof(argv[5]);
  std::printf("%s: relative error %.3g (bound %.3g)\n", error <= bound ? "OK" : "FAIL", error,
              bound);
  return error <= bound ? 0 : 1;
}
