// Linked into every fuzz target: libFuzzer calls this once before the first input, and every
// target runs ops (the CPU kernels must be registered first).
#include "runtime/init.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ompq::init();
  return 0;
}
