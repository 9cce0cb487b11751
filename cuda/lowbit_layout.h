// The index math of the packed low-bit implicit GEMM (cuda/lowbit_kernels.cu) as host-and-device
// code: which thread loads which part of a tile, where it lands in shared memory, which bytes each
// lane of a warp hands to mma.sync m16n8k32 and which accumulators it gets back, how K is split
// over blocks, where the packed weight codes of a tile lie, and the launch configuration. The
// kernels call these functions; tests/cuda/lowbit_layout_test.cc runs them on the CPU for every
// thread of a block and checks the product against the CPU reference and the PTX fragment tables.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/dtype.h"
#include "core/error.h"
#include "core/ops/conv.h"
#include "core/shape.h"

// Loops over the registers of a slice must unroll on the device (constant indices keep them in
// registers); the host compiler, which runs them in the CPU test, does not know the pragma.
#if defined(__CUDACC__)
#define OMPQ_LOWBIT_UNROLL _Pragma("unroll")
#else
#define OMPQ_LOWBIT_UNROLL
#endif

namespace ompq::cuda::lowbit {

// ---- tiles and launch -------------------------------------------------------------------------
// A block computes a 64 (m) x 64 (o) output tile over k tiles of 64; its 4 warps each own a
// 32 x 32 quarter as 2 x 4 mma tiles of 16 x 8 (x 32 k).
constexpr int kTileM = 64, kTileN = 64, kTileK = 64;
constexpr int kMmaM = 16, kMmaN = 8, kMmaK = 32;
constexpr int kWarpSize = 32;
constexpr int kWarpTileM = 32, kWarpTileN = 32;
constexpr int kWarpMmaM = kWarpTileM / kMmaM, kWarpMmaN = kWarpTileN / kMmaN;
constexpr int kGemmWarps = (kTileM / kWarpTileM) * (kTileN / kWarpTileN);
constexpr int kGemmThreads = kGemmWarps * kWarpSize;

// A thread's share of a tile: 32 consecutive k of one row, held as 8 words (byte b of word w is
// k offset 4w + b) and stored to shared memory as two 16-byte chunks.
constexpr int kSliceBytes = 32, kChunkBytes = 16, kSliceChunks = kSliceBytes / kChunkBytes;
constexpr int kSlicesPerRow = kTileK / kSliceBytes;
static_assert(kTileM == kTileN && kGemmThreads == kTileM * kSlicesPerRow,
              "every thread loads one slice of the A tile and one of the B tile");

// Shared tiles are [64][64 + 16] bytes. The 16 bytes of padding make a row 5 chunks of 16 bytes,
// an odd number: 8 consecutive rows then start in 8 different 16-byte bank groups, so that both
// the chunk stores (8 lanes per 128-byte wavefront, 8 consecutive rows) and the 4-byte fragment
// loads (8 rows x 4 words) reach all 32 banks once.
constexpr int kSmemStride = kTileK + 16;
constexpr int kTileBytes = kTileM * kSmemStride;
// Static shared memory of the GEMM kernel: the A and B tiles and their per-slice row sums. It
// takes no dynamic shared memory.
constexpr int kGemmStaticSharedBytes =
    2 * kTileBytes + 2 * kSlicesPerRow * kTileM * static_cast<int>(sizeof(int32_t));
constexpr int kGemmDynamicSharedBytes = 0;
static_assert(kGemmStaticSharedBytes <= 48 * 1024, "static shared memory is limited to 48 KiB");

// Split K: at least 4 k tiles per split, at most 64 splits.
constexpr int kMinSplitKTiles = 4, kMaxSplits = 64;

// ---- geometry ---------------------------------------------------------------------------------

// Conv geometry as the kernels see it: one GEMM per group, C[m, o] over m = (n, oh, ow)
// positions and the group's o, K = kh * kw * (C/groups) in packed weight order (i, j, c): the
// kernel taps, each tap's channels of the group innermost (ops::pack_weight_codes).
struct ConvGeometry {
  int batch, channels, height, width;  // input (all groups)
  int out_channels, out_h, out_w;      // output (all groups)
  int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int groups, group_channels, group_out;  // C / groups, O / groups
  int k;                                  // kh * kw * group_channels
  int m;                                  // batch * out_h * out_w
  // Element strides of x's channel, row and column (NCHW: H*W, W, 1; channels_last: 1, W*C, C);
  // an image is C*H*W elements either way.
  int64_t x_stride_c, x_stride_h, x_stride_w;
  bool out_channels_last;  // out is NHWC in memory (else NCHW)
  // Bytes per global load of an A slice (1, 4, 8 or 16): see a_load_bytes.
  int a_load_bytes;
};

// Bytes per global load of the A gather. K's order (i, j, c) puts a tap's channels of the group
// at consecutive k; where a pixel's channels are contiguous in memory (channels_last, or a 1x1
// image: a linear layer's rows), they are read 16, 8 or 4 bytes at a time, the widest that
// divides C and C/groups: every pixel's group then starts on that boundary (given x's address
// does too), and a tap's run of C/groups channels holds whole loads (slices start at multiples of
// 32), so that no load straddles two taps. Otherwise one byte at a time: in NCHW consecutive
// channels are H*W apart, and a ragged C/groups (or C) leaves some runs of channels unaligned.
inline int a_load_bytes(int channels, int group_channels, int64_t x_stride_c, uintptr_t x_address) {
  if (x_stride_c != 1) return 1;
  for (int bytes : {16, 8, 4}) {
    if (channels % bytes == 0 && group_channels % bytes == 0 && x_address % bytes == 0) {
      return bytes;
    }
  }
  return 1;
}

// Global loads of one thread for an A slice that lies inside K.
OMPQ_HD inline int a_slice_loads(const ConvGeometry& geo) { return kSliceBytes / geo.a_load_bytes; }

// x [N, C, H, W] (NCHW, or NHWC in memory when x_channels_last), out [N, O, OH, OW] (likewise),
// weight [O, C/groups, kh, kw]; x_address: where x's data starts.
inline ConvGeometry conv_geometry(const Shape& x, bool x_channels_last, const Shape& out,
                                  bool out_channels_last, const Shape& weight,
                                  const Conv2dParams& p, uintptr_t x_address) {
  ConvGeometry geo;
  geo.batch = static_cast<int>(x[0]);
  geo.channels = static_cast<int>(x[1]);
  geo.height = static_cast<int>(x[2]);
  geo.width = static_cast<int>(x[3]);
  geo.out_channels = static_cast<int>(out[1]);
  geo.out_h = static_cast<int>(out[2]);
  geo.out_w = static_cast<int>(out[3]);
  geo.kh = static_cast<int>(weight[2]);
  geo.kw = static_cast<int>(weight[3]);
  geo.stride_h = static_cast<int>(p.stride[0]);
  geo.stride_w = static_cast<int>(p.stride[1]);
  geo.pad_h = static_cast<int>(p.padding[0]);
  geo.pad_w = static_cast<int>(p.padding[1]);
  geo.dil_h = static_cast<int>(p.dilation[0]);
  geo.dil_w = static_cast<int>(p.dilation[1]);
  geo.groups = static_cast<int>(p.groups);
  geo.group_channels = geo.channels / geo.groups;
  geo.group_out = geo.out_channels / geo.groups;
  geo.k = geo.kh * geo.kw * geo.group_channels;
  geo.m = geo.batch * geo.out_h * geo.out_w;
  const int64_t c = geo.channels, h = geo.height, w = geo.width;
  geo.x_stride_c = x_channels_last ? 1 : h * w;
  geo.x_stride_h = x_channels_last ? w * c : w;
  geo.x_stride_w = x_channels_last ? c : 1;
  geo.out_channels_last = out_channels_last;
  geo.a_load_bytes = a_load_bytes(geo.channels, geo.group_channels, geo.x_stride_c, x_address);
  return geo;
}

// Where x[n, c, ih, iw] lies in x's memory.
OMPQ_HD inline int64_t x_index(const ConvGeometry& geo, int n, int c, int ih, int iw) {
  return static_cast<int64_t>(n) * geo.channels * geo.height * geo.width + c * geo.x_stride_c +
         ih * geo.x_stride_h + iw * geo.x_stride_w;
}

// Where output element (m, o) (o over all groups) lies in out [N, O, OH, OW].
OMPQ_HD inline int64_t output_index(const ConvGeometry& geo, int m, int o) {
  if (geo.out_channels_last) return static_cast<int64_t>(m) * geo.out_channels + o;
  const int positions = geo.out_h * geo.out_w;
  const int n = m / positions, pos = m % positions;
  return (static_cast<int64_t>(n) * geo.out_channels + o) * positions + pos;
}

// The packed weight as the kernels see it.
struct PackedWeightView {
  const uint8_t* packed;  // [O, row_bytes]
  int64_t row_bytes;
  bool word_rows;  // every row starts on a 4-byte boundary
  int bits;
  int32_t qmin;
  const int32_t* zero_point;  // [O] or null
};

// ---- split K ----------------------------------------------------------------------------------

OMPQ_HD inline int k_tile_count(int k) { return (k + kTileK - 1) / kTileK; }

struct SplitK {
  int splits, tiles_per_split;
};

// When the output tiles (`output_blocks` of them) cannot fill 2 blocks per SM, K is split over
// blocks, each taking at least kMinSplitKTiles of the k_tiles; no split is empty.
inline SplitK plan_split_k(int64_t output_blocks, int k_tiles, int sm_count) {
  const int64_t wanted = 2 * int64_t{sm_count};
  const int64_t by_occupancy = (wanted + output_blocks - 1) / output_blocks;
  const int splits = static_cast<int>(std::clamp<int64_t>(
      std::min<int64_t>(by_occupancy, k_tiles / kMinSplitKTiles), 1, kMaxSplits));
  const int tiles_per_split = (k_tiles + splits - 1) / splits;
  return {(k_tiles + tiles_per_split - 1) / tiles_per_split, tiles_per_split};
}

// The k tiles [begin, end) of split `split`.
struct KTileRange {
  int begin, end;
};
OMPQ_HD inline KTileRange split_k_tiles(int split, const SplitK& plan, int k_tiles) {
  const int begin = split * plan.tiles_per_split;
  const int end = begin + plan.tiles_per_split;
  return {begin, end < k_tiles ? end : k_tiles};
}

// How many of the K products a split's tiles hold (the last tile may end past K).
OMPQ_HD inline int split_k_products(int k, const KTileRange& tiles) {
  const int end = tiles.end * kTileK, begin = tiles.begin * kTileK;
  return (end < k ? end : k) - (begin < k ? begin : k);
}

// The block of grid position (x, y, z): output tile origin, group and split.
struct BlockTile {
  int m0, n0, group, split;
};
OMPQ_HD inline BlockTile block_tile(int block_x, int block_y, int block_z, int splits) {
  return {block_x * kTileM, block_y * kTileN, block_z / splits, block_z % splits};
}

// The GEMM kernel's launch: grid (m tiles, n tiles, groups * splits) of kGemmThreads threads,
// kGemmDynamicSharedBytes of dynamic shared memory (kGemmStaticSharedBytes static).
struct PackedGemmLaunch {
  int grid_x, grid_y, grid_z;
  SplitK split;
};
inline PackedGemmLaunch packed_gemm_launch(const ConvGeometry& geo, int sm_count) {
  const int m_tiles = (geo.m + kTileM - 1) / kTileM;
  const int n_tiles = (geo.group_out + kTileN - 1) / kTileN;
  const SplitK split =
      plan_split_k(int64_t{m_tiles} * n_tiles * geo.groups, k_tile_count(geo.k), sm_count);
  return {m_tiles, n_tiles, geo.groups * split.splits, split};
}

// ---- loading a tile ---------------------------------------------------------------------------

// The slice of a tile that thread `thread` of the block loads: row (thread % 64), k offset
// 32 * (thread / 64). Lanes of a warp take consecutive rows, so that a quarter warp's 16-byte
// stores hit 8 consecutive rows (conflict-free, see kSmemStride) and the gather reads 32
// consecutive positions per k.
struct TileSlice {
  int row, k_offset;
};
OMPQ_HD inline TileSlice tile_slice(int thread) {
  return {thread % kTileM, (thread / kTileM) * kSliceBytes};
}

// Byte offset in a shared tile of chunk `chunk` (0 or 1: words 4 * chunk ..) of a thread's slice.
OMPQ_HD inline int slice_chunk_offset(int thread, int chunk) {
  const TileSlice s = tile_slice(thread);
  return s.row * kSmemStride + s.k_offset + chunk * kChunkBytes;
}

// Global loads: through the read-only cache on the device, plain reads on the host (the CPU test).
template <typename T>
OMPQ_HD inline T read_global(const T* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// kBytes (4, 8 or 16) at p as kBytes / 4 little-endian words. p must be kBytes-aligned: the device
// faults otherwise, so the host (the CPU test) refuses it too.
template <int kBytes>
OMPQ_HD inline void read_global_vector(const void* p, uint32_t* words) {
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16, "vector loads are 4, 8 or 16 bytes");
#ifdef __CUDA_ARCH__
  if constexpr (kBytes == 16) {
    const uint4 v = __ldg(static_cast<const uint4*>(p));
    words[0] = v.x, words[1] = v.y, words[2] = v.z, words[3] = v.w;
  } else if constexpr (kBytes == 8) {
    const uint2 v = __ldg(static_cast<const uint2*>(p));
    words[0] = v.x, words[1] = v.y;
  } else {
    words[0] = __ldg(static_cast<const uint32_t*>(p));
  }
#else
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  OMPQ_CHECK(address % kBytes == 0, "lowbit A gather: a ", kBytes, "-byte load at 0x",
             absl::Hex(address), ", which is not ", kBytes, "-byte aligned");
  std::memcpy(words, p, kBytes);
#endif
}

// Where reduction index k lies in the window: tap (i, j) and channel c of the group, K in packed
// weight order (i, j, c).
struct WindowPosition {
  int i, j, c;
};
OMPQ_HD inline WindowPosition window_position(const ConvGeometry& geo, int k) {
  const int tap = k / geo.group_channels;
  return {tap / geo.kw, tap % geo.kw, k - tap * geo.group_channels};
}

// `at` moved on by `step` channels, a divisor of C/groups: past a tap's last channel, the next
// tap's first (no division, for the loaders' inner loop).
OMPQ_HD inline void advance_window_position(const ConvGeometry& geo, int step, WindowPosition& at) {
  at.c += step;
  if (at.c == geo.group_channels) {
    at.c = 0;
    if (++at.j == geo.kw) {
      at.j = 0;
      ++at.i;
    }
  }
}

// The A slice kBytes (geo.a_load_bytes: 1, 4, 8 or 16) at a time: each load is the channels
// at.c .. at.c + kBytes - 1 of the group at one tap's input pixel, or `pad` where that pixel is
// padding. kBytes divides C/groups and k_begin, so a load lies inside one tap, and wholly inside
// or wholly past K; a vector load's address is kBytes-aligned (see a_load_bytes). With one byte
// per load the lanes of a warp read consecutive positions for each k, coalesced across the warp
// for NCHW.
template <int kBytes, typename XCode>
OMPQ_HD inline void load_a_runs(uint32_t (&words)[8], const XCode* x, const ConvGeometry& geo,
                                int g, int n, int ih0, int iw0, int k_begin, uint8_t pad) {
  WindowPosition at = window_position(geo, k_begin);
  OMPQ_LOWBIT_UNROLL
  for (int v = 0; v < kSliceBytes / kBytes; ++v) {
    if (k_begin + v * kBytes >= geo.k) break;
    const int ih = ih0 + at.i * geo.dil_h, iw = iw0 + at.j * geo.dil_w;
    const bool inside = ih >= 0 && ih < geo.height && iw >= 0 && iw < geo.width;
    if constexpr (kBytes == 1) {
      const uint8_t byte = inside ? static_cast<uint8_t>(read_global(
                                        x + x_index(geo, n, g * geo.group_channels + at.c, ih, iw)))
                                  : pad;
      words[v / 4] |= static_cast<uint32_t>(byte) << (8 * (v % 4));
    } else {
      constexpr int kWords = kBytes / 4;
      if (inside) {
        read_global_vector<kBytes>(x + x_index(geo, n, g * geo.group_channels + at.c, ih, iw),
                                   words + v * kWords);
      } else {
        OMPQ_LOWBIT_UNROLL
        for (int w = 0; w < kWords; ++w) words[v * kWords + w] = 0x01010101u * pad;
      }
    }
    advance_window_position(geo, kBytes, at);
  }
}

// A[m, k_begin ..][32] of group g: raw activation codes, `pad` (the activation zero point) where
// the window falls on padding, 0 beyond K or M (0 x 0 products, and sums over valid k only).
template <typename XCode>
OMPQ_HD inline void load_a_slice(uint32_t (&words)[8], const XCode* x, const ConvGeometry& geo,
                                 int g, int m, int k_begin, uint8_t pad) {
  OMPQ_LOWBIT_UNROLL
  for (int w = 0; w < 8; ++w) words[w] = 0;
  if (m >= geo.m) return;
  const int positions = geo.out_h * geo.out_w;
  const int n = m / positions, pos = m % positions;
  const int ih0 = (pos / geo.out_w) * geo.stride_h - geo.pad_h;
  const int iw0 = (pos % geo.out_w) * geo.stride_w - geo.pad_w;
  switch (geo.a_load_bytes) {
    case 16:
      return load_a_runs<16>(words, x, geo, g, n, ih0, iw0, k_begin, pad);
    case 8:
      return load_a_runs<8>(words, x, geo, g, n, ih0, iw0, k_begin, pad);
    case 4:
      return load_a_runs<4>(words, x, geo, g, n, ih0, iw0, k_begin, pad);
    default:
      return load_a_runs<1>(words, x, geo, g, n, ih0, iw0, k_begin, pad);
  }
}

// Packing offsets (core/ops/quant_math.h: a row is a little-endian bit stream of kBits-bit
// values). The 32 codes from k_begin (a multiple of 32) are kBits words from word
// (k_begin / 32) * kBits of a row of whole words; the 8 codes from k (a multiple of 8) are kBits
// bytes from byte (k / 8) * kBits.
OMPQ_HD constexpr int64_t packed_slice_word(int k_begin, int bits) {
  return static_cast<int64_t>(k_begin / 32) * bits;
}
OMPQ_HD constexpr int64_t packed_group_byte(int k, int bits) {
  return static_cast<int64_t>(k / 8) * bits;
}

// B[o, k_begin ..][32] (k_begin a multiple of 32): the stored values (code - qmin) of row o,
// 0 beyond K or the group's output channels. Aligned words unpacked at compile-time bit offsets
// when rows are whole words and the 32 codes lie inside K; otherwise 4 groups of 8 codes (kBits
// bytes each), read bytewise up to the row's end.
template <int kBits>
OMPQ_HD inline void load_b_slice(uint32_t (&words)[8], const PackedWeightView& w,
                                 const ConvGeometry& geo, int o, int o_local, int k_begin) {
  constexpr uint32_t kMask = (1u << kBits) - 1;
  OMPQ_LOWBIT_UNROLL
  for (int t = 0; t < 8; ++t) words[t] = 0;
  if (o_local >= geo.group_out) return;
  const uint8_t* row = w.packed + static_cast<int64_t>(o) * w.row_bytes;
  if (w.word_rows && k_begin + kSliceBytes <= geo.k) {
    const uint32_t* src =
        reinterpret_cast<const uint32_t*>(row) + packed_slice_word(k_begin, kBits);
    uint32_t packed[kBits + 1];
    OMPQ_LOWBIT_UNROLL
    for (int i = 0; i < kBits; ++i) packed[i] = read_global(src + i);
    packed[kBits] = 0;
    OMPQ_LOWBIT_UNROLL
    for (int v = 0; v < 32; ++v) {
      const int bit = v * kBits, word = bit / 32, shift = bit % 32;
      uint32_t value = packed[word] >> shift;
      if (shift + kBits > 32) value |= packed[word + 1] << (32 - shift);
      words[v / 4] |= (value & kMask) << (8 * (v % 4));
    }
    return;
  }
  OMPQ_LOWBIT_UNROLL
  for (int group = 0; group < 4; ++group) {
    const int k = k_begin + group * 8;
    if (k >= geo.k) break;
    const int64_t byte = packed_group_byte(k, kBits);
    const int64_t left = w.row_bytes - byte;
    const int available = left < kBits ? static_cast<int>(left) : kBits;
    uint64_t stream = 0;
    for (int b = 0; b < available; ++b) {
      stream |= static_cast<uint64_t>(read_global(row + byte + b)) << (8 * b);
    }
    uint64_t values = 0;
    OMPQ_LOWBIT_UNROLL
    for (int v = 0; v < 8; ++v) values |= ((stream >> (v * kBits)) & kMask) << (8 * v);
    // Codes at or past K stay 0: the row's padding bits are 0, but the last group's bytes may
    // be whole while K ends inside them.
    const int valid = geo.k - k;
    if (valid < 8) values &= (uint64_t{1} << (8 * valid)) - 1;
    words[2 * group] = static_cast<uint32_t>(values);
    words[2 * group + 1] = static_cast<uint32_t>(values >> 32);
  }
}

// Sum of the 32 bytes of a slice, as signed or unsigned bytes.
template <bool kSigned>
OMPQ_HD inline int slice_byte_sum(const uint32_t (&words)[8]) {
  int sum = 0;
  OMPQ_LOWBIT_UNROLL
  for (int w = 0; w < 8; ++w) {
#ifdef __CUDA_ARCH__
    sum = kSigned ? __dp4a(static_cast<int>(words[w]), 0x01010101, sum)
                  : static_cast<int>(__dp4a(words[w], 0x01010101u, static_cast<unsigned>(sum)));
#else
    for (int b = 0; b < 4; ++b) {
      const uint8_t byte = static_cast<uint8_t>(words[w] >> (8 * b));
      sum += kSigned ? static_cast<int>(static_cast<int8_t>(byte)) : static_cast<int>(byte);
    }
#endif
  }
  return sum;
}

// ---- the warp's mma tiles ---------------------------------------------------------------------

// A warp's 32 x 32 quarter of the block tile.
struct WarpTile {
  int m, n;
};
OMPQ_HD inline WarpTile warp_tile(int warp) {
  return {(warp / (kTileN / kWarpTileN)) * kWarpTileM, (warp % (kTileN / kWarpTileN)) * kWarpTileN};
}

// (row, col) of an element in an mma tile.
struct TileCoord {
  int row, col;
};

// mma.sync m16n8k32 with 8-bit operands, per lane (group = lane / 4, thread in group = lane % 4):
// A fragment register reg (0..3) holds 4 consecutive k of one row of the 16 x 32 A tile, starting
// at the returned (m, k); B register reg (0..1) 4 consecutive k of one column of the 32 x 8 B tile
// (B is stored n-major in shared memory: row = n, col = k); accumulator i (0..3) is element
// (m, n) of the 16 x 8 C tile.
OMPQ_HD inline TileCoord a_fragment_coord(int lane, int reg) {
  return {lane / 4 + 8 * (reg % 2), (lane % 4) * 4 + 16 * (reg / 2)};
}
OMPQ_HD inline TileCoord b_fragment_coord(int lane, int reg) {
  return {lane / 4, (lane % 4) * 4 + 16 * reg};
}
OMPQ_HD inline TileCoord c_fragment_coord(int lane, int i) {
  return {lane / 4 + 8 * (i / 2), (lane % 4) * 2 + i % 2};
}

// Byte offset in a shared tile of a fragment register of the mma tile whose first row is `row0`
// and first k is `k0`.
OMPQ_HD inline int a_fragment_offset(int lane, int reg, int row0, int k0) {
  const TileCoord c = a_fragment_coord(lane, reg);
  return (row0 + c.row) * kSmemStride + k0 + c.col;
}
OMPQ_HD inline int b_fragment_offset(int lane, int reg, int n0, int k0) {
  const TileCoord c = b_fragment_coord(lane, reg);
  return (n0 + c.row) * kSmemStride + k0 + c.col;
}

// acc = sum (A - zx)(B - zw) over `products` k from the raw sum A*B and the row sums of A and B:
// sum A*B - zw * sum A - zx * sum B + products * zx * zw, in int32 arithmetic modulo 2^32 (exact
// whenever the true result fits in int32, as the CPU's does).
OMPQ_HD inline uint32_t centred_accumulator(uint32_t raw, uint32_t zw, uint32_t zx, int a_sum,
                                            int b_sum, int products) {
  return raw - zw * static_cast<uint32_t>(a_sum) - zx * static_cast<uint32_t>(b_sum) +
         static_cast<uint32_t>(products) * zx * zw;
}

}  // namespace ompq::cuda::lowbit
