// The CPU backend's entry point: fills every op family's dispatch stub with its CPU kernel.
// Each family's kernels file defines its register function.
#pragma once

namespace ompq::cpu {

void register_copy_kernels();
void register_random_kernels();
void register_elementwise_kernels();
void register_reduce_kernels();
void register_linalg_kernels();
void register_conv_kernels();
void register_pool_kernels();
void register_norm_kernels();
void register_softmax_kernels();
void register_dropout_kernels();
void register_optim_kernels();
void register_quant_kernels();
void register_pack_kernels();
void register_integer_kernels();
void register_adaround_kernels();
void register_amp_kernels();

inline void register_all_kernels() {
  register_copy_kernels();
  register_random_kernels();
  register_elementwise_kernels();
  register_reduce_kernels();
  register_linalg_kernels();
  register_conv_kernels();
  register_pool_kernels();
  register_norm_kernels();
  register_softmax_kernels();
  register_dropout_kernels();
  register_optim_kernels();
  register_quant_kernels();
  register_pack_kernels();
  register_integer_kernels();
  register_adaround_kernels();
  register_amp_kernels();
}

}  // namespace ompq::cpu
