// Packed low-bit integer convolution and linear layers on CUDA (ops::packed_conv2d): weights
// packed at 2..8 bits (ops::pack_weight_codes) x int8/uint8 activation codes -> int32
// accumulators -> optionally requantized codes, equal bit for bit to the CPU reference
// (unpack_weight_codes + int_conv2d + requantize).
//
// Zero points. With A = raw activation codes (the pad value is the activation zero point zx, whose
// centred value is 0) and B = the stored weight values u = code - qmin (0 .. 2^bits - 1), the
// centred weight is u - zw' with zw'[o] = zw[o] - qmin, and over one window of K products
//   acc = sum (A - zx)(B - zw') = sum A*B - zw' * sum A - zx * sum B + K * zx * zw'.
// The MMA computes sum A*B on the raw codes (A as s8 or u8, B as u8); the row sums of A and B come
// from the tiles in shared memory. All of it is int32 arithmetic modulo 2^32 (unsigned in C++),
// which gives the exact result whenever the true accumulator fits in int32, as the CPU's does.
//
// Kernels:
//  - implicit GEMM (every conv with C/groups > 1, and linear): per group, C[m, o] over
//    m = (n, oh, ow) positions and o output channels, K = kh * kw * (C/groups) in packed weight
//    order (i, j, c): the kernel taps, each tap's channels innermost, so that over channels_last
//    inputs (and a linear layer's rows) a tap's channels are contiguous in memory. Block tile
//    64 (m) x 64 (o) x 64 (k), 4 warps of 32 x 32, each a 2 x 4 grid of mma.sync m16n8k32
//    (int8 tensor cores, sm_80+). Every thread loads a 32-byte slice of one row of each tile into
//    registers (A: runs of a tap's channels as 16-, 8- or 4-byte vectors, the widest C, C/groups
//    and x's alignment allow, over channels_last inputs and linear rows, at any kernel size,
//    stride, padding, dilation and groups; byte by byte from NCHW codes or where C/groups is
//    ragged; B: 4 * bits bytes of a packed row, `bits` aligned words when rows are whole
//    words, unpacked in registers with the bit width a template parameter) and stores it as two
//    16-byte vectors into shared memory [64][64 + 16], where both those stores and the fragment
//    loads are free of bank conflicts. The next tile is fetched into registers while the tensor
//    cores work on the current one. When the output tiles alone cannot fill the GPU, K is split
//    over blocks that add their partial accumulators into an int32 buffer (atomics: integer
//    addition is exact in any order), and requantization runs afterwards. The index math (slices,
//    fragments, split K, packing offsets, launch configuration) is cuda/lowbit_layout.h, tested on
//    the CPU. K's order is the packed rows' own: the weights are packed tap-major on the host (file
//    format packed-v2) rather than repacked into a cached device copy per layer, which would
//    need a device-side cache keyed by weight storage (invalidation on in-place writes, a
//    second copy of every weight) and a repacking kernel that only a GPU could test.
//  - depthwise (C/groups == 1: K = kh * kw, too small for tensor cores): one thread per output
//    element, reading its window directly and its weight codes from the packed row.
#include <cstdint>
#include <optional>
#include <type_traits>

#include "core/ops/conv.h"
#include "core/ops/integer.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "cuda/launch.cuh"
#include "cuda/lowbit_layout.h"
#include "cuda/register.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the packed low-bit kernels need int8 mma.sync m16n8k32 (sm_80 or newer)"
#endif

namespace ompq::cuda {
namespace {

using namespace lowbit;  // the GEMM's tiles, fragments and loaders (cuda/lowbit_layout.h)

// The epilogue: accumulators to i32, or requantized to Out codes.
struct EpilogueParams {
  const float* multiplier;  // [O], null: store the int32 accumulator
  const float* offset;      // [O] or null
  float zero_point, qmin, qmax;
};

template <typename Out>
__device__ __forceinline__ void store_output(Out* out, int64_t index, uint32_t acc, int o,
                                             const EpilogueParams& e) {
  if constexpr (std::is_same_v<Out, int32_t>) {
    out[index] = static_cast<int32_t>(acc);
  } else {
    out[index] = static_cast<Out>(requantize_value(static_cast<int32_t>(acc), e.multiplier[o],
                                                   e.offset != nullptr ? e.offset[o] : 0.0f,
                                                   e.zero_point, e.qmin, e.qmax));
  }
}

// d += a (16 x 32, row-major, s8 or u8) * b (32 x 8, column-major, u8), s32 accumulators.
template <bool kASigned>
__device__ __forceinline__ void mma_m16n8k32(uint32_t (&d)[4], const uint32_t (&a)[4],
                                             const uint32_t (&b)[2]) {
  if constexpr (kASigned) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

// This thread's slice, as two 16-byte stores (conflict-free: see kSmemStride).
__device__ __forceinline__ void store_slice(uint8_t* tile, const uint32_t (&words)[8]) {
#pragma unroll
  for (int chunk = 0; chunk < kSliceChunks; ++chunk) {
    *reinterpret_cast<uint4*>(tile + slice_chunk_offset(threadIdx.x, chunk)) = make_uint4(
        words[4 * chunk], words[4 * chunk + 1], words[4 * chunk + 2], words[4 * chunk + 3]);
  }
}

// acc[m, o] (before the zero-point terms) for one 64 x 64 output tile of one group over the k
// tiles of one split (block_tile); then the zero-point terms and the epilogue, or an atomic add of
// the partial result into `out` (int32) when split.
template <typename XCode, typename Out, int kBits>
__global__ void __launch_bounds__(kGemmThreads)
    packed_gemm_kernel(Out* out, const XCode* x, int32_t x_zero_point, PackedWeightView w,
                       ConvGeometry geo, EpilogueParams epilogue, SplitK split) {
  constexpr bool kASigned = std::is_same_v<XCode, int8_t>;
  __shared__ __align__(16) uint8_t a_tile[kTileBytes];
  __shared__ __align__(16) uint8_t b_tile[kTileBytes];
  __shared__ int32_t a_sums[kSlicesPerRow][kTileM], b_sums[kSlicesPerRow][kTileN];

  const BlockTile block = block_tile(blockIdx.x, blockIdx.y, blockIdx.z, split.splits);
  const KTileRange tiles = split_k_tiles(block.split, split, k_tile_count(geo.k));
  const int lane = threadIdx.x % kWarpSize;
  const WarpTile warp = warp_tile(threadIdx.x / kWarpSize);

  // This thread's slice of the A and B tiles, for loading and for the row sums.
  const TileSlice slice = tile_slice(threadIdx.x);
  const int m = block.m0 + slice.row;
  const int o_local = block.n0 + slice.row, o = block.group * geo.group_out + o_local;
  const uint8_t pad = static_cast<uint8_t>(x_zero_point);
  int a_sum = 0, b_sum = 0;

  uint32_t acc[kWarpMmaM][kWarpMmaN][4] = {};
  uint32_t a_next[8], b_next[8];
  if (tiles.begin < tiles.end) {
    load_a_slice(a_next, x, geo, block.group, m, tiles.begin * kTileK + slice.k_offset, pad);
    load_b_slice<kBits>(b_next, w, geo, o, o_local, tiles.begin * kTileK + slice.k_offset);
  }
  for (int tile = tiles.begin; tile < tiles.end; ++tile) {
    store_slice(a_tile, a_next);
    store_slice(b_tile, b_next);
    a_sum += slice_byte_sum<kASigned>(a_next);
    b_sum += slice_byte_sum<false>(b_next);
    __syncthreads();
    if (tile + 1 < tiles.end) {  // in flight while the tensor cores work
      load_a_slice(a_next, x, geo, block.group, m, (tile + 1) * kTileK + slice.k_offset, pad);
      load_b_slice<kBits>(b_next, w, geo, o, o_local, (tile + 1) * kTileK + slice.k_offset);
    }
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += kMmaK) {
      uint32_t a_frag[kWarpMmaM][4], b_frag[kWarpMmaN][2];
#pragma unroll
      for (int mt = 0; mt < kWarpMmaM; ++mt) {
#pragma unroll
        for (int reg = 0; reg < 4; ++reg) {
          a_frag[mt][reg] = *reinterpret_cast<const uint32_t*>(
              a_tile + a_fragment_offset(lane, reg, warp.m + mt * kMmaM, kk));
        }
      }
#pragma unroll
      for (int nt = 0; nt < kWarpMmaN; ++nt) {
#pragma unroll
        for (int reg = 0; reg < 2; ++reg) {
          b_frag[nt][reg] = *reinterpret_cast<const uint32_t*>(
              b_tile + b_fragment_offset(lane, reg, warp.n + nt * kMmaN, kk));
        }
      }
#pragma unroll
      for (int mt = 0; mt < kWarpMmaM; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kWarpMmaN; ++nt) {
          mma_m16n8k32<kASigned>(acc[mt][nt], a_frag[mt], b_frag[nt]);
        }
      }
    }
    __syncthreads();
  }

  // Row sums of A and B over this split's k, one per slice of each row.
  a_sums[slice.k_offset / kSliceBytes][slice.row] = a_sum;
  b_sums[slice.k_offset / kSliceBytes][slice.row] = b_sum;
  __syncthreads();

  const int products = split_k_products(geo.k, tiles);
  const uint32_t zx = static_cast<uint32_t>(x_zero_point);
#pragma unroll
  for (int mt = 0; mt < kWarpMmaM; ++mt) {
#pragma unroll
    for (int nt = 0; nt < kWarpMmaN; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const TileCoord c = c_fragment_coord(lane, i);
        const int row = warp.m + mt * kMmaM + c.row, col = warp.n + nt * kMmaN + c.col;
        const int mm = block.m0 + row, ol = block.n0 + col;
        if (mm >= geo.m || ol >= geo.group_out) continue;
        const int oo = block.group * geo.group_out + ol;
        const uint32_t zw =
            static_cast<uint32_t>((w.zero_point != nullptr ? w.zero_point[oo] : 0) - w.qmin);
        int row_sum = 0, col_sum = 0;
#pragma unroll
        for (int s = 0; s < kSlicesPerRow; ++s) {
          row_sum += a_sums[s][row];
          col_sum += b_sums[s][col];
        }
        const uint32_t value =
            centred_accumulator(acc[mt][nt][i], zw, zx, row_sum, col_sum, products);
        const int64_t index = output_index(geo, mm, oo);
        if (split.splits > 1) {
          if constexpr (std::is_same_v<Out, int32_t>) {
            atomicAdd(reinterpret_cast<unsigned int*>(out + index), value);
          }
        } else {
          store_output(out, index, value, oo, epilogue);
        }
      }
    }
  }
}

// One output element per thread (taken in NCHW order): acc = sum over the window of
// (x - zx)(w - zw) for a layer with one input channel per group; codes of row o read from the
// packed row with unpack_value (with one channel, packed weight order (i, j, c) is tap i * kw + j).
template <typename XCode, typename Out>
__global__ void packed_depthwise_kernel(Out* out, const XCode* x, int32_t x_zero_point,
                                        PackedWeightView w, ConvGeometry geo,
                                        EpilogueParams epilogue) {
  const int64_t total = static_cast<int64_t>(geo.batch) * geo.out_channels * geo.out_h * geo.out_w;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
       index += step) {
    const int ow = static_cast<int>(index % geo.out_w);
    const int oh = static_cast<int>((index / geo.out_w) % geo.out_h);
    const int o = static_cast<int>((index / (geo.out_w * geo.out_h)) % geo.out_channels);
    const int n =
        static_cast<int>(index / (static_cast<int64_t>(geo.out_w) * geo.out_h * geo.out_channels));
    const int c = o / geo.group_out;
    const uint8_t* row = w.packed + static_cast<int64_t>(o) * w.row_bytes;
    const int32_t zw = (w.zero_point != nullptr ? w.zero_point[o] : 0) - w.qmin;
    int32_t acc = 0;
    for (int i = 0; i < geo.kh; ++i) {
      const int ih = oh * geo.stride_h - geo.pad_h + i * geo.dil_h;
      if (ih < 0 || ih >= geo.height) continue;
      for (int j = 0; j < geo.kw; ++j) {
        const int iw = ow * geo.stride_w - geo.pad_w + j * geo.dil_w;
        if (iw < 0 || iw >= geo.width) continue;
        const int32_t code =
            static_cast<int32_t>(unpack_value(row, w.row_bytes, i * geo.kw + j, w.bits));
        acc += (static_cast<int32_t>(x[x_index(geo, n, c, ih, iw)]) - x_zero_point) * (code - zw);
      }
    }
    const int m = (n * geo.out_h + oh) * geo.out_w + ow;
    store_output(out, output_index(geo, m, o), static_cast<uint32_t>(acc), o, epilogue);
  }
}

// fn(std::integral_constant<int, bits>) for bits 2..8: the unpacking is compiled per width.
template <typename Fn>
void with_bits(int bits, const Fn& fn) {
  switch (bits) {
    case 2:
      return fn(std::integral_constant<int, 2>{});
    case 3:
      return fn(std::integral_constant<int, 3>{});
    case 4:
      return fn(std::integral_constant<int, 4>{});
    case 5:
      return fn(std::integral_constant<int, 5>{});
    case 6:
      return fn(std::integral_constant<int, 6>{});
    case 7:
      return fn(std::integral_constant<int, 7>{});
    case 8:
      return fn(std::integral_constant<int, 8>{});
    default:
      OMPQ_CHECK(false, "packed_conv2d: bits = ", bits, " (expected 2..8)");
  }
}

template <typename XCode, typename Out>
void launch_packed(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                   const PackedWeightView& w, const ConvGeometry& geo,
                   const EpilogueParams& epilogue, const std::optional<Requantization>& requant) {
  const int device = x.device().index;
  DeviceGuard guard(device);
  const cudaStream_t stream = default_stream(device).get();
  const XCode* xd = static_cast<const XCode*>(x.data_ptr());
  const int32_t zx = static_cast<int32_t>(x_zero_point);
  if (geo.group_channels == 1) {
    const int64_t total = static_cast<int64_t>(geo.m) * geo.out_channels;
    packed_depthwise_kernel<XCode, Out><<<grid_blocks(total, device), kBlockThreads, 0, stream>>>(
        static_cast<Out*>(out.data_ptr()), xd, zx, w, geo, epilogue);
    OMPQ_CUDA_CHECK_LAUNCH();
    return;
  }
  const PackedGemmLaunch launch =
      packed_gemm_launch(geo, device_properties(device).multiProcessorCount);
  OMPQ_CHECK(launch.grid_y <= 65535 && launch.grid_z <= 65535, "packed_conv2d: ", geo.group_out,
             " output channels per group in ", geo.groups, " groups (", launch.split.splits,
             " K splits each) are more than one launch holds");
  const dim3 grid(static_cast<unsigned>(launch.grid_x), static_cast<unsigned>(launch.grid_y),
                  static_cast<unsigned>(launch.grid_z));
  if (launch.split.splits == 1) {
    with_bits(w.bits, [&](auto bits) {
      packed_gemm_kernel<XCode, Out, decltype(bits)::value>
          <<<grid, kGemmThreads, kGemmDynamicSharedBytes, stream>>>(
              static_cast<Out*>(out.data_ptr()), xd, zx, w, geo, epilogue, launch.split);
    });
    OMPQ_CUDA_CHECK_LAUNCH();
    return;
  }
  // Split K: partial accumulators add up in an int32 buffer in out's memory order, requantized
  // afterwards.
  const Tensor acc = std::is_same_v<Out, int32_t> ? out
                                                  : empty_nchw(out.shape(), geo.out_channels_last,
                                                               DType::kI32, out.device());
  OMPQ_CUDA_CHECK(cudaMemsetAsync(acc.data_ptr(), 0, acc.numel() * sizeof(int32_t), stream));
  with_bits(w.bits, [&](auto bits) {
    packed_gemm_kernel<XCode, int32_t, decltype(bits)::value>
        <<<grid, kGemmThreads, kGemmDynamicSharedBytes, stream>>>(
            static_cast<int32_t*>(acc.data_ptr()), xd, zx, w, geo, epilogue, launch.split);
  });
  OMPQ_CUDA_CHECK_LAUNCH();
  if (requant) {
    // Element by element over memory: channels_last puts the channel innermost, as in [M, O].
    const Shape memory_shape = geo.out_channels_last ? Shape{geo.m, geo.out_channels} : acc.shape();
    requantize_stub(
        out.device(), out, acc, requant->multiplier.contiguous(),
        requant->offset.defined() ? requant->offset.contiguous() : Tensor(), requant->zero_point,
        ops::quant_layout(memory_shape, requant->multiplier, Tensor(), 1, "packed_conv2d"),
        requant->range);
  }
}

void packed_conv2d_kernel(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                          const PackedWeight& w, const Conv2dParams& p,
                          const std::optional<Requantization>& requant) {
  OMPQ_CHECK(x.is_contiguous() || is_channels_last(x), "packed_conv2d: input of shape ",
             shape_str(x.shape()), " is neither NCHW-contiguous nor channels_last");
  OMPQ_CHECK(out.is_contiguous() || is_channels_last(out), "packed_conv2d: output of shape ",
             shape_str(out.shape()), " is neither NCHW-contiguous nor channels_last");
  const ConvGeometry geo =
      conv_geometry(x.shape(), is_channels_last(x), out.shape(), is_channels_last(out), w.shape, p,
                    reinterpret_cast<uintptr_t>(x.data_ptr()));
  const Tensor packed = w.packed.contiguous();
  const Tensor zero_point = w.zero_point.defined() ? w.zero_point.contiguous() : Tensor();
  const PackedWeightView view{
      static_cast<const uint8_t*>(packed.data_ptr()),
      packed.size(1),
      packed.size(1) % 4 == 0 && reinterpret_cast<uintptr_t>(packed.data_ptr()) % 4 == 0,
      w.bits,
      static_cast<int32_t>(w.qmin),
      zero_point.defined() ? static_cast<const int32_t*>(zero_point.data_ptr()) : nullptr};
  EpilogueParams epilogue{nullptr, nullptr, 0.0f, 0.0f, 0.0f};
  Tensor multiplier, offset;
  if (requant) {
    multiplier = requant->multiplier.contiguous();
    offset = requant->offset.defined() ? requant->offset.contiguous() : Tensor();
    epilogue = {static_cast<const float*>(multiplier.data_ptr()),
                offset.defined() ? static_cast<const float*>(offset.data_ptr()) : nullptr,
                static_cast<float>(requant->zero_point), static_cast<float>(requant->range.qmin),
                static_cast<float>(requant->range.qmax)};
  }
  auto with_x = [&](auto out_code) {
    using Out = decltype(out_code);
    if (x.dtype() == DType::kI8) {
      launch_packed<int8_t, Out>(out, x, x_zero_point, view, geo, epilogue, requant);
    } else {
      launch_packed<uint8_t, Out>(out, x, x_zero_point, view, geo, epilogue, requant);
    }
  };
  switch (out.dtype()) {
    case DType::kI32:
      return with_x(int32_t{});
    case DType::kI8:
      return with_x(int8_t{});
    case DType::kU8:
      return with_x(uint8_t{});
    default:
      OMPQ_CHECK(false, "packed_conv2d: output dtype ", dtype_name(out.dtype()),
                 " (expected i32, i8 or u8)");
  }
}

}  // namespace

void register_lowbit_kernels() {
  packed_conv2d_stub.register_kernel(DeviceType::kCUDA, packed_conv2d_kernel);
}

}  // namespace ompq::cuda
