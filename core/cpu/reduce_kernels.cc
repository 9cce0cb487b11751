#include "core/cpu/register.h"

namespace ompq::cpu {

void register_reduce_kernels() {}

}  // namespace ompq::cpu
