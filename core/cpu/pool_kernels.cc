#include "core/cpu/register.h"

namespace ompq::cpu {

void register_pool_kernels() {}

}  // namespace ompq::cpu
