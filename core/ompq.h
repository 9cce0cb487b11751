// Everything a user of the tensor engine needs: tensors, random numbers, autograd and the
// autograd-aware functional API.
#pragma once

#include "core/autograd.h"
#include "core/random.h"
#include "core/tensor.h"
