// Everything a user of the tensor engine needs: tensors, random numbers, autograd and the
// autograd-aware functional API.
#pragma once

#include "core/autograd.h"
#include "core/functional/concat.h"
#include "core/functional/conv.h"
#include "core/functional/dropout.h"
#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/functional/norm.h"
#include "core/functional/pool.h"
#include "core/functional/quant.h"
#include "core/functional/reduce.h"
#include "core/functional/softmax.h"
#include "core/random.h"
#include "core/tensor.h"
