// Packed low-bit integer convolution and linear layers on CUDA (ops::packed_conv2d): weights
// packed at 2..8 bits (core/ops/pack.h) x int8/uint8 activation codes -> int32 accumulators ->
// optionally requantized codes, equal bit for bit to the CPU reference (unpack_codes + int_conv2d
// + requantize).
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
//    m = (n, oh, ow) positions and o output channels, K = (C/groups) * kh * kw in weight order
//    (c, i, j). Block tile 64 (m) x 64 (o) x 64 (k), 4 warps of 32 x 32, each a 2 x 4 grid of
//    mma.sync m16n8k32 (int8 tensor cores, sm_80+). A tile: gathered from NCHW codes (or read
//    as rows of [M, K] for linear, 16-byte vectors when aligned) into shared memory
//    [64][64 + 16] bytes (the 16-byte pad makes the fragment loads conflict-free). B tile: each
//    thread reads 32 codes = 4 * bits bytes of a packed row (`bits` aligned words when rows are
//    whole words) and unpacks them in registers, with the bit width a template parameter, to 32
//    bytes of shared memory [64][64 + 16]. Two threads share a row of each tile. The next tile
//    is fetched into registers while the tensor cores work on the current one. When
//    the output tiles alone cannot fill the GPU, K is split over blocks that add their partial
//    accumulators into an int32 buffer (atomics: integer addition is exact in any order), and
//    requantization runs afterwards.
//  - depthwise (C/groups == 1: K = kh * kw, too small for tensor cores): one thread per output
//    element, reading its window directly and its weight codes from the packed row.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "core/ops/integer.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the packed low-bit kernels need int8 mma.sync m16n8k32 (sm_80 or newer)"
#endif

namespace ompq::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 64;
constexpr int kGemmThreads = 128;              // 4 warps, 2 x 2 over the 64 x 64 tile
constexpr int kSmemStride = kTileK + 16;       // bytes per shared row
constexpr int kMinSplitKTiles = 4;             // k tiles per split, at least

// Conv geometry as the kernels see it, for one group.
struct ConvGeometry {
  int batch, channels, height, width;  // input (all groups)
  int out_channels, out_h, out_w;      // output (all groups)
  int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int groups, group_channels, group_out;  // C / groups, O / groups
  int k;                                  // group_channels * kh * kw
  int m;                                  // batch * out_h * out_w
  bool dense;  // a 1x1 kernel on a 1x1 image (linear): A row m is x[m, group's channels]
  bool dense_vectors;  // dense, with every row's group 16-byte aligned: loaded as uint4
};

// The packed weight as the kernels see it.
struct PackedWeightView {
  const uint8_t* packed;    // [O, row_bytes]
  int64_t row_bytes;
  bool word_rows;  // every row starts on a 4-byte boundary
  int bits;
  int32_t qmin;
  const int32_t* zero_point;  // [O] or null
};

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

// Sum of the four bytes of `word`, as signed or unsigned bytes.
template <bool kSigned>
__device__ __forceinline__ int byte_sum(uint32_t word) {
  if constexpr (kSigned) {
    return __dp4a(static_cast<int>(word), 0x01010101, 0);
  } else {
    return static_cast<int>(__dp4a(word, 0x01010101u, 0u));
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

// One thread's share of a tile: row (threadIdx.x / 2), k half (threadIdx.x % 2) = 32 bytes, held
// in registers between the global load and the shared store.
struct TileSlice {
  uint32_t words[8];
};

// Loads A[row, k0 + half * 32 ..][32] of group g: raw activation codes, zx where the window falls
// on padding, 0 beyond K or M (0 x 0 products, and sums over valid k only).
template <typename XCode>
__device__ __forceinline__ void load_a(TileSlice& s, const XCode* x, const ConvGeometry& geo,
                                       int g, int m, int k_begin, uint8_t pad) {
  uint8_t bytes[32];
#pragma unroll
  for (int t = 0; t < 32; ++t) bytes[t] = 0;
  if (m < geo.m) {
    if (geo.dense) {
      const XCode* row = x + static_cast<int64_t>(m) * geo.channels + g * geo.group_channels;
      if (geo.dense_vectors && k_begin + 32 <= geo.k) {
        const uint4* src = reinterpret_cast<const uint4*>(row + k_begin);  // 16-byte aligned
        const uint4 lo = __ldg(src), hi = __ldg(src + 1);
        s.words[0] = lo.x, s.words[1] = lo.y, s.words[2] = lo.z, s.words[3] = lo.w;
        s.words[4] = hi.x, s.words[5] = hi.y, s.words[6] = hi.z, s.words[7] = hi.w;
        return;
      }
#pragma unroll 8
      for (int t = 0; t < 32; ++t) {
        const int k = k_begin + t;
        if (k < geo.k) bytes[t] = static_cast<uint8_t>(row[k]);
      }
    } else {
      const int positions = geo.out_h * geo.out_w;
      const int n = m / positions, pos = m % positions;
      const int ih0 = (pos / geo.out_w) * geo.stride_h - geo.pad_h;
      const int iw0 = (pos % geo.out_w) * geo.stride_w - geo.pad_w;
      const XCode* image =
          x + (static_cast<int64_t>(n) * geo.channels + g * geo.group_channels) * geo.height *
                  geo.width;
      const int taps = geo.kh * geo.kw;
      int c = k_begin / taps, r = k_begin % taps;
      int i = r / geo.kw, j = r % geo.kw;
      for (int t = 0; t < 32 && k_begin + t < geo.k; ++t) {
        const int ih = ih0 + i * geo.dil_h, iw = iw0 + j * geo.dil_w;
        bytes[t] = (ih >= 0 && ih < geo.height && iw >= 0 && iw < geo.width)
                       ? static_cast<uint8_t>(image[(static_cast<int64_t>(c) * geo.height + ih) *
                                                        geo.width +
                                                    iw])
                       : pad;
        if (++j == geo.kw) {  // walk (c, i, j) without dividing
          j = 0;
          if (++i == geo.kh) {
            i = 0;
            ++c;
          }
        }
      }
    }
  }
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    s.words[w] = bytes[4 * w] | (bytes[4 * w + 1] << 8) | (bytes[4 * w + 2] << 16) |
                 (static_cast<uint32_t>(bytes[4 * w + 3]) << 24);
  }
}

// Loads and unpacks B[o, k_begin ..][32] (k_begin a multiple of 32) of kBits-bit codes to 32
// stored values, 0 beyond K or the group's output channels. The 32 codes are 4 * kBits bytes from
// byte k_begin * kBits / 8 of the row: when rows are whole 4-byte words and the 32 codes lie
// inside K, they are kBits aligned words unpacked at compile-time bit offsets; otherwise 4 groups
// of 8 codes (kBits bytes each), read bytewise up to the row's end.
template <int kBits>
__device__ __forceinline__ void load_b(TileSlice& s, const PackedWeightView& w,
                                       const ConvGeometry& geo, int o, int o_local, int k_begin) {
  constexpr uint32_t kMask = (1u << kBits) - 1;
#pragma unroll
  for (int t = 0; t < 8; ++t) s.words[t] = 0;
  if (o_local >= geo.group_out) return;
  const uint8_t* row = w.packed + static_cast<int64_t>(o) * w.row_bytes;
  if (w.word_rows && k_begin + 32 <= geo.k) {
    const uint32_t* src = reinterpret_cast<const uint32_t*>(row) + (k_begin / 32) * kBits;
    uint32_t words[kBits + 1];
#pragma unroll
    for (int i = 0; i < kBits; ++i) words[i] = __ldg(src + i);
    words[kBits] = 0;
#pragma unroll
    for (int v = 0; v < 32; ++v) {
      const int bit = v * kBits, word = bit / 32, shift = bit % 32;
      uint32_t value = words[word] >> shift;
      if (shift + kBits > 32) value |= words[word + 1] << (32 - shift);
      s.words[v / 4] |= (value & kMask) << (8 * (v % 4));
    }
    return;
  }
#pragma unroll
  for (int group = 0; group < 4; ++group) {
    const int k = k_begin + group * 8;
    if (k >= geo.k) break;
    const int64_t byte = static_cast<int64_t>(k / 8) * kBits;
    const int64_t left = w.row_bytes - byte;
    const int available = left < kBits ? static_cast<int>(left) : kBits;
    uint64_t stream = 0;
    for (int b = 0; b < available; ++b) stream |= static_cast<uint64_t>(row[byte + b]) << (8 * b);
    uint64_t values = 0;
#pragma unroll
    for (int v = 0; v < 8; ++v) values |= ((stream >> (v * kBits)) & kMask) << (8 * v);
    // Codes at or past K stay 0: the row's padding bits are 0, but the last group's bytes may
    // be whole while K ends inside them.
    const int valid = geo.k - k;
    if (valid < 8) values &= (uint64_t{1} << (8 * valid)) - 1;
    s.words[2 * group] = static_cast<uint32_t>(values);
    s.words[2 * group + 1] = static_cast<uint32_t>(values >> 32);
  }
}

__device__ __forceinline__ void store_slice(uint8_t* tile, const TileSlice& s) {
  const int row = threadIdx.x / 2, half = threadIdx.x % 2;
  uint32_t* dst = reinterpret_cast<uint32_t*>(tile + row * kSmemStride + half * 32);
#pragma unroll
  for (int w = 0; w < 8; ++w) dst[w] = s.words[w];
}

// acc[m, o] (before the zero-point terms) for one 64 x 64 output tile of group blockIdx.z /
// splits over k tiles of split blockIdx.z % splits; then the zero-point terms and the epilogue,
// or an atomic add of the partial result into `out` (int32) when split.
template <typename XCode, typename Out, int kBits>
__global__ void __launch_bounds__(kGemmThreads)
    packed_gemm_kernel(Out* out, const XCode* x, int32_t x_zero_point, PackedWeightView w,
                       ConvGeometry geo, EpilogueParams epilogue, int splits, int k_tiles_per_split) {
  constexpr bool kASigned = std::is_same_v<XCode, int8_t>;
  __shared__ __align__(16) uint8_t a_tile[kTileM * kSmemStride];
  __shared__ __align__(16) uint8_t b_tile[kTileN * kSmemStride];
  __shared__ int32_t a_sums[kTileM], b_sums[kTileN];

  const int g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int m0 = blockIdx.x * kTileM, n0 = blockIdx.y * kTileN;
  const int k_tiles = (geo.k + kTileK - 1) / kTileK;
  const int tile_begin = split * k_tiles_per_split;
  const int tile_end = min(k_tiles, tile_begin + k_tiles_per_split);

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warp_m = (warp / 2) * 32, warp_n = (warp % 2) * 32;
  const int group_id = lane / 4, in_group = lane % 4;

  // This thread's slice row and k half, for loading and for the row sums.
  const int slice_row = threadIdx.x / 2, slice_half = threadIdx.x % 2;
  const int m = m0 + slice_row;
  const int o_local = n0 + slice_row, o = g * geo.group_out + o_local;
  const uint8_t pad = static_cast<uint8_t>(x_zero_point);
  int a_sum = 0, b_sum = 0;

  uint32_t acc[2][4][4] = {};
  TileSlice a_next, b_next;
  if (tile_begin < tile_end) {
    load_a(a_next, x, geo, g, m, tile_begin * kTileK + slice_half * 32, pad);
    load_b<kBits>(b_next, w, geo, o, o_local, tile_begin * kTileK + slice_half * 32);
  }
  for (int tile = tile_begin; tile < tile_end; ++tile) {
    store_slice(a_tile, a_next);
    store_slice(b_tile, b_next);
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      a_sum += byte_sum<kASigned>(a_next.words[t]);
      b_sum += byte_sum<false>(b_next.words[t]);
    }
    __syncthreads();
    if (tile + 1 < tile_end) {  // in flight while the tensor cores work
      load_a(a_next, x, geo, g, m, (tile + 1) * kTileK + slice_half * 32, pad);
      load_b<kBits>(b_next, w, geo, o, o_local, (tile + 1) * kTileK + slice_half * 32);
    }
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 32) {
      uint32_t a_frag[2][4], b_frag[4][2];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const uint8_t* base = a_tile + (warp_m + mt * 16 + group_id) * kSmemStride + kk +
                              in_group * 4;
        a_frag[mt][0] = *reinterpret_cast<const uint32_t*>(base);
        a_frag[mt][1] = *reinterpret_cast<const uint32_t*>(base + 8 * kSmemStride);
        a_frag[mt][2] = *reinterpret_cast<const uint32_t*>(base + 16);
        a_frag[mt][3] = *reinterpret_cast<const uint32_t*>(base + 8 * kSmemStride + 16);
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const uint8_t* base = b_tile + (warp_n + nt * 8 + group_id) * kSmemStride + kk +
                              in_group * 4;
        b_frag[nt][0] = *reinterpret_cast<const uint32_t*>(base);
        b_frag[nt][1] = *reinterpret_cast<const uint32_t*>(base + 16);
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_m16n8k32<kASigned>(acc[mt][nt], a_frag[mt], b_frag[nt]);
      }
    }
    __syncthreads();
  }

  // Row sums of A and B over this split's k, from the two halves of each row.
  a_sum += __shfl_xor_sync(0xffffffffu, a_sum, 1);
  b_sum += __shfl_xor_sync(0xffffffffu, b_sum, 1);
  if (slice_half == 0) {
    a_sums[slice_row] = a_sum;
    b_sums[slice_row] = b_sum;
  }
  __syncthreads();

  const int split_k = min(geo.k, tile_end * kTileK) - min(geo.k, tile_begin * kTileK);
  const uint32_t zx = static_cast<uint32_t>(x_zero_point);
  const int positions = geo.out_h * geo.out_w;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = warp_m + mt * 16 + group_id + half * 8;
      const int mm = m0 + row;
      if (mm >= geo.m) continue;
      const int n = mm / positions, pos = mm % positions;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = warp_n + nt * 8 + in_group * 2 + e;
          const int ol = n0 + col;
          if (ol >= geo.group_out) continue;
          const int oo = g * geo.group_out + ol;
          const uint32_t zw = static_cast<uint32_t>(
              (w.zero_point != nullptr ? w.zero_point[oo] : 0) - w.qmin);
          const uint32_t value = acc[mt][nt][half * 2 + e] -
                                 zw * static_cast<uint32_t>(a_sums[row]) -
                                 zx * static_cast<uint32_t>(b_sums[col]) +
                                 static_cast<uint32_t>(split_k) * zx * zw;
          const int64_t index =
              (static_cast<int64_t>(n) * geo.out_channels + oo) * positions + pos;
          if (splits > 1) {
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
}

// One output element per thread: acc = sum over the window of (x - zx)(w - zw) for a layer with
// one input channel per group; codes of row o read from the packed row with unpack_value.
template <typename XCode, typename Out>
__global__ void packed_depthwise_kernel(Out* out, const XCode* x, int32_t x_zero_point,
                                        PackedWeightView w, ConvGeometry geo,
                                        EpilogueParams epilogue) {
  const int64_t total =
      static_cast<int64_t>(geo.batch) * geo.out_channels * geo.out_h * geo.out_w;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
       index += step) {
    const int ow = static_cast<int>(index % geo.out_w);
    const int oh = static_cast<int>((index / geo.out_w) % geo.out_h);
    const int o = static_cast<int>((index / (geo.out_w * geo.out_h)) % geo.out_channels);
    const int n = static_cast<int>(index / (static_cast<int64_t>(geo.out_w) * geo.out_h *
                                            geo.out_channels));
    const int c = o / geo.group_out;
    const XCode* plane = x + (static_cast<int64_t>(n) * geo.channels + c) * geo.height * geo.width;
    const uint8_t* row = w.packed + static_cast<int64_t>(o) * w.row_bytes;
    const int32_t zw = (w.zero_point != nullptr ? w.zero_point[o] : 0) - w.qmin;
    int32_t acc = 0;
    for (int i = 0; i < geo.kh; ++i) {
      const int ih = oh * geo.stride_h - geo.pad_h + i * geo.dil_h;
      if (ih < 0 || ih >= geo.height) continue;
      for (int j = 0; j < geo.kw; ++j) {
        const int iw = ow * geo.stride_w - geo.pad_w + j * geo.dil_w;
        if (iw < 0 || iw >= geo.width) continue;
        const int32_t code = static_cast<int32_t>(
            unpack_value(row, w.row_bytes, i * geo.kw + j, w.bits));
        acc += (static_cast<int32_t>(plane[ih * geo.width + iw]) - x_zero_point) * (code - zw);
      }
    }
    store_output(out, index, static_cast<uint32_t>(acc), o, epilogue);
  }
}

// fn(std::integral_constant<int, bits>) for bits 2..8: the unpacking is compiled per width.
template <typename Fn>
void with_bits(int bits, const Fn& fn) {
  switch (bits) {
    case 2: return fn(std::integral_constant<int, 2>{});
    case 3: return fn(std::integral_constant<int, 3>{});
    case 4: return fn(std::integral_constant<int, 4>{});
    case 5: return fn(std::integral_constant<int, 5>{});
    case 6: return fn(std::integral_constant<int, 6>{});
    case 7: return fn(std::integral_constant<int, 7>{});
    case 8: return fn(std::integral_constant<int, 8>{});
    default: OMPQ_CHECK(false, "packed_conv2d: bits = ", bits, " (expected 2..8)");
  }
}

ConvGeometry conv_geometry(const Tensor& out, const Tensor& x, const PackedWeight& w,
                           const Conv2dParams& p) {
  ConvGeometry geo;
  geo.batch = static_cast<int>(x.size(0));
  geo.channels = static_cast<int>(x.size(1));
  geo.height = static_cast<int>(x.size(2));
  geo.width = static_cast<int>(x.size(3));
  geo.out_channels = static_cast<int>(out.size(1));
  geo.out_h = static_cast<int>(out.size(2));
  geo.out_w = static_cast<int>(out.size(3));
  geo.kh = static_cast<int>(w.shape[2]);
  geo.kw = static_cast<int>(w.shape[3]);
  geo.stride_h = static_cast<int>(p.stride[0]);
  geo.stride_w = static_cast<int>(p.stride[1]);
  geo.pad_h = static_cast<int>(p.padding[0]);
  geo.pad_w = static_cast<int>(p.padding[1]);
  geo.dil_h = static_cast<int>(p.dilation[0]);
  geo.dil_w = static_cast<int>(p.dilation[1]);
  geo.groups = static_cast<int>(p.groups);
  geo.group_channels = geo.channels / geo.groups;
  geo.group_out = geo.out_channels / geo.groups;
  geo.k = geo.group_channels * geo.kh * geo.kw;
  geo.m = geo.batch * geo.out_h * geo.out_w;
  geo.dense = geo.height == 1 && geo.width == 1 && geo.kh == 1 && geo.kw == 1 &&
              geo.pad_h == 0 && geo.pad_w == 0;
  geo.dense_vectors = geo.dense && geo.channels % 16 == 0 && geo.group_channels % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
  return geo;
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
  const int m_tiles = (geo.m + kTileM - 1) / kTileM;
  const int n_tiles = (geo.group_out + kTileN - 1) / kTileN;
  const int k_tiles = (geo.k + kTileK - 1) / kTileK;
  const int64_t blocks = static_cast<int64_t>(m_tiles) * n_tiles * geo.groups;
  const int64_t wanted = 2 * int64_t{device_properties(device).multiProcessorCount};
  int splits = static_cast<int>(std::clamp<int64_t>(
      std::min<int64_t>((wanted + blocks - 1) / blocks, k_tiles / kMinSplitKTiles), 1, 64));
  const int tiles_per_split = (k_tiles + splits - 1) / splits;
  splits = (k_tiles + tiles_per_split - 1) / tiles_per_split;
  OMPQ_CHECK(static_cast<int64_t>(geo.groups) * splits <= 65535, "packed_conv2d: ", geo.groups,
             " groups are more than one launch holds");
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(geo.groups * splits));
  if (splits == 1) {
    with_bits(w.bits, [&](auto bits) {
      packed_gemm_kernel<XCode, Out, decltype(bits)::value><<<grid, kGemmThreads, 0, stream>>>(
          static_cast<Out*>(out.data_ptr()), xd, zx, w, geo, epilogue, 1, tiles_per_split);
    });
    OMPQ_CUDA_CHECK_LAUNCH();
    return;
  }
  // Split K: partial accumulators add up in an int32 buffer, requantized afterwards.
  const Tensor acc = std::is_same_v<Out, int32_t>
                         ? out
                         : Tensor::empty(out.shape(), DType::kI32, out.device());
  OMPQ_CUDA_CHECK(cudaMemsetAsync(acc.data_ptr(), 0, acc.numel() * sizeof(int32_t), stream));
  with_bits(w.bits, [&](auto bits) {
    packed_gemm_kernel<XCode, int32_t, decltype(bits)::value><<<grid, kGemmThreads, 0, stream>>>(
        static_cast<int32_t*>(acc.data_ptr()), xd, zx, w, geo, epilogue, splits, tiles_per_split);
  });
  OMPQ_CUDA_CHECK_LAUNCH();
  if (requant) {
    requantize_stub(out.device(), out, acc, requant->multiplier.contiguous(),
                    requant->offset.defined() ? requant->offset.contiguous() : Tensor(),
                    requant->zero_point,
                    ops::quant_layout(acc.shape(), requant->multiplier, Tensor(), 1,
                                      "packed_conv2d"),
                    requant->range);
  }
}

void packed_conv2d_kernel(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                          const PackedWeight& w, const Conv2dParams& p,
                          const std::optional<Requantization>& requant) {
  const ConvGeometry geo = conv_geometry(out, x, w, p);
  const Tensor packed = w.packed.contiguous();
  const Tensor zero_point = w.zero_point.defined() ? w.zero_point.contiguous() : Tensor();
  const PackedWeightView view{static_cast<const uint8_t*>(packed.data_ptr()), packed.size(1),
                              packed.size(1) % 4 == 0 &&
                                  reinterpret_cast<uintptr_t>(packed.data_ptr()) % 4 == 0,
                              w.bits, static_cast<int32_t>(w.qmin),
                              zero_point.defined()
                                  ? static_cast<const int32_t*>(zero_point.data_ptr())
                                  : nullptr};
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
    case DType::kI32: return with_x(int32_t{});
    case DType::kI8: return with_x(int8_t{});
    case DType::kU8: return with_x(uint8_t{});
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
