// CUDA random fill: element i of the destination (in logical order, any layout) takes Philox stream
// position stream_start + i, exactly as the CPU kernel does (core/philox.h is shared).
#include "core/convert.h"
#include "core/philox.h"
#include "core/random.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

// dst[offset] = a * r + b for r = uniform or standard normal at stream position start + i, by
// core/philox.h's random_affine as on the CPU (one rounding in double), then rounded to float
// before bf16/f16 (the CPU draws those in f32 and converts).
template <typename T>
struct RandomOp {
  T* dst;
  Distribution dist;
  double a;
  double b;
  uint64_t seed;
  uint64_t start;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t* offsets) const {
    const uint64_t position = start + static_cast<uint64_t>(i);
    const float r = dist == Distribution::kNormal ? philox_normal(seed, position)
                                                  : philox_uniform(seed, position);
    const double value = random_affine(a, r, b);
    if constexpr (std::is_same_v<T, double>) {
      dst[offsets[0]] = value;
    } else {
      dst[offsets[0]] = convert<T>(static_cast<float>(value));
    }
  }
};

template <typename T>
void launch_random(const Tensor& dst, Distribution dist, double a, double b, uint64_t seed,
                   uint64_t stream_start) {
  const auto layout = cpu::merge_dims<1>(dst.shape(), {dst.strides()});
  launch_strided(layout, dst.device().index,
                 RandomOp<T>{static_cast<T*>(dst.data_ptr()), dist, a, b, seed, stream_start});
}

void random_kernel(const Tensor& dst, Distribution dist, double a, double b, uint64_t seed,
                   uint64_t stream_start) {
  switch (dst.dtype()) {
    case DType::kF32:
      return launch_random<float>(dst, dist, a, b, seed, stream_start);
    case DType::kF64:
      return launch_random<double>(dst, dist, a, b, seed, stream_start);
    case DType::kBF16:
      return launch_random<bf16>(dst, dist, a, b, seed, stream_start);
    case DType::kF16:
      return launch_random<f16>(dst, dist, a, b, seed, stream_start);
    default:
      OMPQ_CHECK(false, "random_: dtype ", dtype_name(dst.dtype()), " is not floating");
  }
}

}  // namespace

void register_random_kernels() { random_stub.register_kernel(DeviceType::kCUDA, random_kernel); }

}  // namespace ompq::cuda
