// GPU benchmarks of the vendor-library paths for ompq_bench (Google Benchmark), registered only
// when a GPU is usable (and built only with the CUDA backend):
//   BM_CudnnConv/N32_C64_H56_O64_K3_S1_P1_G1_CL/fwd     every distinct convolution of ResNet-18,
//   BM_CudnnConv/N32_C64_H56_O64_K3_S1_P1_G1_CL/fwdbwd  ResNet-50 and MobileNetV2 at 224x224,
//                                                       bf16 channels_last, batch 32 and 256
//   BM_Gemm/bf16/M16_K4096_N4096                        cuBLASLt x @ w^T (w as linear's weight)
//   BM_Gemm/int8/M16_K4096_N4096                        int8 x int8 -> int32, batch M = 1..256
// Each reports TFLOPS (2 FLOP per multiply-add; int8: TOPS) and peak_fraction against the
// constants below; BM_Gemm also GBps and hbm_fraction (operands and output each moved once), as
// small batches are memory-bound. Times are per launch: a run of launches ended by one device
// synchronization, timed on the host.
#pragma once

namespace ompq {

// The dense peaks of one H100 SXM (the GPU the targets in DESIGN.md name); on another GPU the
// fractions are against these, not that GPU's own peaks.
struct GpuPeaks {
  static constexpr double kBf16Flops = 989e12;
  static constexpr double kTf32Flops = 494e12;
  static constexpr double kFp32Flops = 67e12;
  static constexpr double kInt8Ops = 1979e12;
  static constexpr double kHbmBytesPerSecond = 3.35e12;
};

void register_cuda_benchmarks();

}  // namespace ompq
