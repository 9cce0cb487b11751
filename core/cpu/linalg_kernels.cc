#include "core/cpu/register.h"

namespace ompq::cpu {

void register_linalg_kernels() {}

}  // namespace ompq::cpu
