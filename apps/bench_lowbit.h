// Packed low-bit kernel benchmarks for ompq_bench (Google Benchmark), registered only when a GPU is
// usable: ops::packed_linear and ops::packed_conv2d with W4A8 and W8A8 weights at batch 1..256:
//   BM_PackedLinear/W4A8/M16_K8192_O28672      int8 activations x packed weights -> int8 codes
//   BM_PackedConv2d/W8A8/N16_C64_H56_O64_K3_S1_P1_G1
// Each reports TOPS (2 ops per multiply-add), GBps (weights packed + activations + outputs, each
// moved once) and roofline: the H100 SXM roofline time (max of bytes / 3.35 TB/s and ops / 1979
// dense int8 TOPS) over the measured time. Times are per launch (manual timing of a run of
// launches ended by one synchronizing copy).
#pragma once

namespace ompq {

void register_lowbit_benchmarks();

}  // namespace ompq
