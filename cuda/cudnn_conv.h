// 2-D convolution on cuDNN (the legacy cudnnConvolution* API of cuDNN 9): forward with bias,
// backward data, backward filter and the bias gradient, for f32, f64, bf16 and f16, any groups
// (depthwise included), NCHW or channels_last activations (core/ops/conv.h decides the format).
//
// Per device, a plan cache keyed by (dtype, memory format, input and weight shapes, stride,
// padding, dilation, groups, algorithm-choice mode) holds the descriptors and, per direction, the
// ranked algorithms. Ranking is cuDNN's heuristic (cudnnGet*Algorithm_v7) by default, or measured
// (cudnnFind*AlgorithmEx) in benchmark mode. Workspace comes from the caching allocator; when
// the preferred algorithm's cannot be had, the next one that needs less runs
// (cuda/library_workspace.h). The bias is written into the output first and the convolution
// accumulates onto it; its gradient is the CUDA sum over N, H, W.
//
// f32 runs without TF32 unless allowed (results then match the CPU's to f32 rounding); bf16 and
// f16 run on tensor cores with f32 accumulation. Mixed precision (bf16/f16 operands with an f32
// output or grad_out, core/ops/conv.h): cuDNN computes in the operands' dtype and our copy kernel
// converts between it and f32 (the f32 results carry one low-precision rounding).
#pragma once

#include <cstdint>

namespace ompq::cuda {

// Benchmark mode: time every algorithm once per new shape and keep the fastest. Starts on when
// the environment variable OMPQ_CUDNN_BENCHMARK is 1.
void set_cudnn_benchmark(bool enabled);
bool cudnn_benchmark();

// Lets f32 convolutions use TF32 tensor cores (about 10 bits of mantissa in the products).
void set_cudnn_allow_tf32(bool allowed);
bool cudnn_allow_tf32();

// Algorithm searches (heuristic queries or timing runs, one per direction and new plan) so far:
// a call on a cached shape adds none.
int64_t cudnn_algorithm_searches();
// Drops every cached plan (the next call of each shape searches again).
void clear_cudnn_plans();

}  // namespace ompq::cuda
