#include "core/cpu/register.h"

namespace ompq::cpu {

void register_optim_kernels() {}

}  // namespace ompq::cpu
