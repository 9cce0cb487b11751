// Matrix products on cuBLASLt: the CUDA kernel of matmul_stub (core/ops/linalg.h: matmul,
// linear and their backward products, batched or not) for f32, f64, bf16 and f16, and int8 x
// int8 -> int32 products for the low-bit comparisons.
//
// cuBLASLt is column-major; a row-major product out = a @ w is run as out^T = w^T @ a^T, so
// row-major operands need no transposition and column-major ones (transposed views) become
// op = T. Per device, a plan cache keyed by (dtypes, batch, M, K, N, operand layouts, pointer
// alignments, bias) holds the matmul descriptor, the layouts and the heuristic's ranked
// algorithms; workspace comes from the caching allocator, with the fallback of
// cuda/library_workspace.h. A bias is added by the GEMM's epilogue where cuBLASLt offers one for
// the types and alignment, else out is filled with it first and accumulated into (beta = 1).
//
// f32 runs without TF32 unless allowed (results then match the CPU's to f32 rounding); bf16 and
// f16 accumulate in f32.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace ompq::cuda {

// Lets f32 products use TF32 tensor cores (about 10 bits of mantissa in the products).
void set_cublaslt_allow_tf32(bool allowed);
bool cublaslt_allow_tf32();

// Heuristic queries so far (one per new plan): a product of a cached shape adds none.
int64_t cublaslt_heuristic_queries();

// out[b] = a[b] @ w[b] (+ bias[n] on every row) on cuda. a [B, M, K] and w [B, K, N] are row-
// or column-major in their last two dims with densely packed batches, out [B, M, N] contiguous,
// bias [N] contiguous or undefined. Types: a, w, out and bias all f32, f64, bf16 or f16; a, w
// bf16 or f16 with out and bias f32 (mixed precision: f32 accumulation, unrounded output); or
// a, w i8 with out and bias i32, meeting check_int8_operands.
void cublaslt_matmul(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias);

// What cuBLASLt's int8 products need of a [B, M, K] and w [B, K, N] beyond the shapes: a row-major,
// w column-major, K and N multiples of 4, both starting on 4-byte boundaries. Throws an Error
// naming the first requirement that fails and the size or layout at fault; cublaslt_matmul calls
// it before planning, so that a bad product is not reported as "no algorithm". Reads only shapes,
// strides and addresses: tensors on any device.
void check_int8_operands(const Tensor& a, const Tensor& w);

}  // namespace ompq::cuda
