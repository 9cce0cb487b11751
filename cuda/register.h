// The CUDA backend's kernel families; each file defines its register function, and
// register_backend() (cuda/backend.cc) calls them all once a usable GPU has been found.
#pragma once

namespace ompq::cuda {

void register_copy_kernels();
void register_random_kernels();
void register_elementwise_kernels();
void register_reduce_kernels();
void register_cudnn_conv_kernels();
void register_cublaslt_gemm_kernels();
void register_norm_kernels();
void register_pool_kernels();
void register_softmax_kernels();
void register_optim_kernels();
void register_dropout_kernels();
void register_quant_kernels();
void register_adaround_kernels();
void register_lowbit_kernels();
void register_amp_kernels();

}  // namespace ompq::cuda
