#include "core/cpu/register.h"

namespace ompq::cpu {

void register_conv_kernels() {}

}  // namespace ompq::cpu
