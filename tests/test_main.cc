// GoogleTest main shared by every test binary: initializes the runtime once before any test.
#include <gtest/gtest.h>

#include "runtime/init.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ompq::init();
  return RUN_ALL_TESTS();
}
