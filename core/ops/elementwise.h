// Broadcasting elementwise ops (raw: no autograd). OWNED BY THE ELEMENTWISE WORK ITEM: extend freely,
// but keep these signatures, which core/autograd.cc uses.
#pragma once

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq::ops {

Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);

}  // namespace ompq::ops
