// GPU benchmarks of the vendor-library paths and our training kernels for ompq_bench (Google
// Benchmark), registered only when a GPU is usable (and built only with the CUDA backend):
//   BM_CudnnConv/N32_C64_H56_O64_K3_S1_P1_G1_CL/fwd     every distinct convolution of ResNet-18,
//   BM_CudnnConv/N32_C64_H56_O64_K3_S1_P1_G1_CL/fwdbwd  ResNet-50 and MobileNetV2 at 224x224,
//                                                       bf16 channels_last, batch 32 and 256
//   BM_Gemm/bf16/M16_K4096_N4096                        cuBLASLt x @ w^T (w as linear's weight)
//   BM_Gemm/int8/M16_K4096_N4096                        int8 x int8 -> int32, at the M, K and N
//                                                       of BM_PackedLinear (bench_lowbit.h)
//   BM_CudaFakeQuant/per_tensor/fwd/N256_C64_H56        fake-quant forward, and its STE backward
//   BM_CudaFakeQuant/per_channel/bwd/N256_C64_H56       (input and scale gradients), f32
//   BM_CudaBatchNorm/train_fwd/N256_C64_H56_CL          batch norm in training mode, forward and
//   BM_CudaBatchNorm/train_bwd/N256_C64_H56             backward (every gradient), plain or fused
//   BM_CudaBatchNorm/train_fwd_add_relu/N256_C64_H56    with a residual add and ReLU, f32
// Convolutions and GEMMs report TFLOPS (2 FLOP per multiply-add; int8: TOPS) and peak_fraction
// against GpuPeaks (apps/bench_gpu.h); BM_Gemm, fake-quant and batch norm report GBps and
// hbm_fraction (the bytes each case must move at least, see each case). Fake-quant and batch norm
// take f32 and f64 only, so they have no bf16 cases. Times are per launch (bench_gpu.h).
#pragma once

namespace ompq {

void register_cuda_benchmarks();

}  // namespace ompq
