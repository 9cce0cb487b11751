// Packed low-bit kernel benchmarks for ompq_bench (Google Benchmark), registered only when a GPU is
// usable: ops::packed_linear and ops::packed_conv2d with W4A8 and W8A8 weights:
//   BM_PackedLinear/W4A8/M16_K8192_N28672      int8 activations x packed weights -> int8 codes, at
//                                              the M, K and N of BM_Gemm's cuBLASLt int8 and bf16
//                                              cases (kGpuLinearShapes, apps/bench_gpu.h)
//   BM_PackedConv2d/W8A8/N32_C144_H56_O144_K3_S2_P1_G144
//                                              batch 1, 32 and 256 on shapes of BM_CudnnConv
// so that scripts/gpu_summary.py prints W4A8 against W8A8 and each against its vendor peer.
// Each reports TOPS (2 ops per multiply-add), GBps (weights packed + activations + outputs, each
// moved once) and roofline: the H100 SXM roofline time (max of bytes / 3.35 TB/s and ops / 1979
// dense int8 TOPS) over the measured time. Times are per launch (apps/bench_gpu.h).
#pragma once

namespace ompq {

void register_lowbit_benchmarks();

}  // namespace ompq
