#include "core/cpu/register.h"

namespace ompq::cpu {

void register_dropout_kernels() {}

}  // namespace ompq::cpu
