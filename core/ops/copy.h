// Strided copy with broadcasting and dtype conversion, and fill: the two primitives that views,
// contiguous(), to() and every initializer are built on.
#pragma once

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// dst and src have the same shape (the front half expands src); dtypes may differ; when devices
// differ the kernel of the non-CPU side runs.
using CopyKernel = void(const Tensor& dst, const Tensor& src);
using FillKernel = void(const Tensor& dst, double value);
extern DispatchStub<CopyKernel> copy_stub;
extern DispatchStub<FillKernel> fill_stub;

namespace ops {
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);
}  // namespace ops

}  // namespace ompq
