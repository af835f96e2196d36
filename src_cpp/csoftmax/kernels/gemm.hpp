// A single-threaded, cache-blocked sgemm for the large-vocabulary kernel: C (+)= A . B in float32.
//
//   C is (M, N) row-major with leading dimension ldc; A is (M, K) and B is (K, N), each given by a
//   pointer and two strides (MatrixView), so a transpose or a column slice is a view, never a copy.
//
// The structure is BLIS's: K is cut into blocks of block_k, N into blocks of block_n and M into
// blocks of block_m (the running machine's, tuning()); each block of A and B is packed into micro-panels (kMicroRows rows of A,
// kMicroCols columns of B, interleaved along k) so the register kernel reads both with unit stride;
// the packed B block stays in L2, and each A micro-panel stays in L1 while the B micro-panels stream
// past it. That order (A micro-panel outside, B micro-panel inside) walks C along its rows, kMicroRows
// rows at a time: a C in memory (a slice of dW) is then kMicroRows sequential streams, which the
// hardware prefetchers follow, where the other order would step down C's columns a row stride apart.
//
// Order of summation: every C element is summed over k in increasing order, block after block, by
// one FMA chain per (element, k-block). It depends on (M, N, K), the strides and block_k (the
// machine's, fixed for the process) only, never on timing, so a call gives bit-identical results
// whichever thread runs it: callers parallelize by giving each thread its own C region.
//
// Its reference is the whole kernel's: kernels/tiled_linear_cross_entropy_naive.hpp, plain loops that
// the tests compare the tiled kernel with (tests/test_tiled_linear_cross_entropy.py).
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT::gemm {

// Element (i, j) is data[i * row_stride + j * col_stride].
struct MatrixView {
  const float* data;
  int64_t row_stride;
  int64_t col_stride;
  float operator()(int64_t i, int64_t j) const { return data[i * row_stride + j * col_stride]; }
  MatrixView block(int64_t i, int64_t j) const {
    return {data + i * row_stride + j * col_stride, row_stride, col_stride};
  }
  MatrixView transposed() const { return {data, col_stride, row_stride}; }
};

// The register tile (kMicroRows x kMicroCols, compile time) and the cache blocks (Tuning: block_m,
// block_n, block_k, derived from the running machine's caches) are in csoftmax/tuning.hpp.

namespace detail {

#if defined(__AVX512F__)
// rows[0..15] <- their transpose (16 x 16 floats in registers).
inline void transpose16(__m512 rows[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(rows[i], rows[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    rows[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    rows[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    rows[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    rows[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Now each 128-bit lane q of rows[4g + r] holds the 4x4 block (rows 4q.., columns 4g'..); gather
  // the lanes across groups of four registers.
  for (int i = 0; i < 4; ++i) {
    const __m512 a = rows[i], b = rows[4 + i], c = rows[8 + i], d = rows[12 + i];
    const __m512 ab_lo = _mm512_shuffle_f32x4(a, b, 0x44), ab_hi = _mm512_shuffle_f32x4(a, b, 0xEE);
    const __m512 cd_lo = _mm512_shuffle_f32x4(c, d, 0x44), cd_hi = _mm512_shuffle_f32x4(c, d, 0xEE);
    t[i] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xDD);
    t[8 + i] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xDD);
  }
  for (int i = 0; i < 16; ++i) rows[i] = t[i];
}
#endif

// Gathers `width` (<= lanes <= 16) strided lines of 16 contiguous floats and writes them transposed
// into `lanes` lanes: out[j * out_stride + l] = line l, element j (0 for width <= l < lanes), j < 16.
inline void transpose_lines16(float* out, int64_t out_stride, const float* src, int64_t line_stride, int width,
                              int lanes) {
#if defined(__AVX512F__)
  __m512 v[16];
  for (int l = 0; l < 16; ++l) v[l] = l < width ? _mm512_loadu_ps(src + l * line_stride) : _mm512_setzero_ps();
  transpose16(v);
  const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
  for (int j = 0; j < 16; ++j) _mm512_mask_storeu_ps(out + j * out_stride, mask, v[j]);
#else
  for (int j = 0; j < 16; ++j)
    for (int l = 0; l < lanes; ++l) out[j * out_stride + l] = l < width ? src[l * line_stride + j] : 0.0f;
#endif
}

// Packs `lines` (<= panel) lines of a matrix into one micro-panel of `depth` steps:
// out[k * panel + l] = src(line l, step k), zero for l >= lines. `step_stride` and `line_stride` are
// the source strides along k and along the lines.
// (The panel width is a template argument so that the copies and transposes have fixed sizes.)
template <int panel>
inline void pack_panel(float* out, const float* src, int64_t lines, int64_t depth, int64_t line_stride,
                       int64_t step_stride) {
  int64_t k = 0;
  if (step_stride == 1) {
    // The source lines run along k: transpose 16 x 16 blocks in registers.
    for (int l0 = 0; l0 < panel; l0 += 16) {
      const int lanes = std::min(16, panel - l0);
      const int width = static_cast<int>(std::clamp<int64_t>(lines - l0, 0, lanes));
      for (k = 0; k + 16 <= depth; k += 16)
        transpose_lines16(out + k * panel + l0, panel, src + l0 * line_stride + k, line_stride, width, lanes);
    }
  } else if (line_stride == 1 && lines == panel) {
    // Each step is `panel` contiguous floats: a straight copy.
    for (; k < depth; ++k) std::memcpy(out + k * panel, src + k * step_stride, panel * sizeof(float));
    return;
  }
  for (; k < depth; ++k)
    for (int l = 0; l < panel; ++l) out[k * panel + l] = l < lines ? src[l * line_stride + k * step_stride] : 0.0f;
}

// A (m, k) -> ceil(m / kMicroRows) micro-panels of kMicroRows rows, each k steps deep.
inline void pack_a(float* out, MatrixView A, int64_t m, int64_t k) {
  for (int64_t i = 0; i < m; i += kMicroRows)
    pack_panel<kMicroRows>(out + i * k, A.data + i * A.row_stride, std::min<int64_t>(kMicroRows, m - i), k,
                           A.row_stride, A.col_stride);
}

// B (k, n) -> ceil(n / kMicroCols) micro-panels of kMicroCols columns, each k steps deep.
inline void pack_b(float* out, MatrixView B, int64_t k, int64_t n) {
  for (int64_t j = 0; j < n; j += kMicroCols)
    pack_panel<kMicroCols>(out + j * k, B.data + j * B.col_stride, std::min<int64_t>(kMicroCols, n - j), k,
                           B.col_stride, B.row_stride);
}

// The register kernel: c (kMicroRows x kMicroCols, leading dimension ldc) = a . b (+ c), over `depth`
// steps of the panels a (step k: the kMicroRows floats at a + k a_step; a_step is kMicroRows for a
// packed panel) and b (packed, depth x kMicroCols).
inline void micro_kernel(int64_t depth, const float* a, int64_t a_step, const float* b, float* c, int64_t ldc,
                         bool accumulate) {
  // The C tile is read (or written) only after the k loop: start fetching its lines now, so a C that
  // lives in memory (a slice of dW, of the logits) does not stall the kernel at the end.
#pragma GCC unroll 16
  for (int i = 0; i < kMicroRows; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + kMicroCols - 1, 1);
  }
  simd::vfloat acc[kMicroRows][kVectors];
#pragma GCC unroll 32
  for (int i = 0; i < kMicroRows * kVectors; ++i) acc[i / kVectors][i % kVectors] = simd::zero();
  for (int64_t k = 0; k < depth; ++k) {
    simd::vfloat bv[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) bv[v] = simd::load(b + k * kMicroCols + v * simd::kWidth);
#pragma GCC unroll 16
    for (int i = 0; i < kMicroRows; ++i) {
      const simd::vfloat ai = simd::broadcast(a[k * a_step + i]);
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[i][v] += ai * bv[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMicroRows; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) {
      float* p = c + i * ldc + v * simd::kWidth;
      simd::store(p, accumulate ? simd::load(p) + acc[i][v] : acc[i][v]);
    }
}

// The same on a partial tile (rows < kMicroRows or cols < kMicroCols), through a full-size buffer.
inline void micro_kernel_edge(int64_t depth, const float* a, int64_t a_step, const float* b, float* c, int64_t ldc,
                              bool accumulate, int64_t rows, int64_t cols) {
  float tile[kMicroRows * kMicroCols];
  micro_kernel(depth, a, a_step, b, tile, kMicroCols, false);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * kMicroCols + j] : tile[i * kMicroCols + j];
}

}  // namespace detail

inline int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

namespace detail {

// Touches the cache lines of the next block of B while the current one is being multiplied, a few
// lines per micro-kernel call. B is often a slice of W read from memory (once per chunk of rows);
// without this, packing it waits on memory (measured: logits of 98 rows against a streamed (C, D) W,
// 182 -> 193 GFLOP/s on one Zen 5 core; 216 with W in cache).
class BlockPrefetch {
 public:
  BlockPrefetch() = default;
  // The (k, n) block of B at `block`, to be fetched over `calls` micro-kernel calls.
  BlockPrefetch(MatrixView block, int64_t k, int64_t n, int64_t calls) {
    // Only when B's columns run along k (W^T read from a (C, D) W): the packing then reads 16 strided
    // streams at once, which the hardware prefetchers do not follow; rows along n they do.
    if (block.row_stride == 1) base_ = block.data, run_stride_ = block.col_stride, runs_ = n, run_lines_ = k / 16 + 1;
    per_call_ = calls > 0 ? (runs_ * run_lines_ + calls - 1) / calls : 0;
  }
  void step() {
    for (int64_t i = 0; i < per_call_ && run_ < runs_; ++i) {
      __builtin_prefetch(base_ + run_ * run_stride_ + line_ * 16);
      if (++line_ == run_lines_) line_ = 0, ++run_;
    }
  }

 private:
  const float* base_ = nullptr;
  int64_t run_stride_ = 0, runs_ = 0, run_lines_ = 0, per_call_ = 0, run_ = 0, line_ = 0;
};

// The prefetch of the B block that follows block (pc, jc) in gemm()'s order: the next k block of the
// same columns, or the first of the next columns.
inline BlockPrefetch next_block(MatrixView B, int64_t K, int64_t N, int64_t pc, int64_t jc, int64_t calls) {
  const int64_t block_k = tuning().block_k, block_n = tuning().block_n;
  const int64_t kc = std::min(block_k, K - pc), nc = std::min(block_n, N - jc);
  if (pc + kc < K) return BlockPrefetch(B.block(pc + kc, jc), std::min(block_k, K - pc - kc), nc, calls);
  if (jc + nc < N) return BlockPrefetch(B.block(0, jc + nc), std::min(block_k, K), std::min(block_n, N - jc - nc), calls);
  return BlockPrefetch();
}

}  // namespace detail

// Packing buffers of one thread, reused across calls: one A block (block_m x block_k) and one B block
// (block_n x block_k) of the blocks given (always tuning(): the same for every call of a process).
struct Workspace {
  std::vector<float> a, b;
  void reserve(const Tuning& t) {
    a.resize(static_cast<size_t>(round_up(t.block_m, kMicroRows) * t.block_k));
    b.resize(static_cast<size_t>(round_up(t.block_n, kMicroCols) * t.block_k));
  }
};

// A packed once for several products (the same rows of X against every class tile): for each k
// block, all of A's rows in micro-panels. pack_a_blocks writes it; gemm takes it instead of A.
inline int64_t packed_a_size(int64_t M, int64_t K) { return round_up(M, kMicroRows) * K; }

inline void pack_a_blocks(float* out, MatrixView A, int64_t M, int64_t K) {
  const int64_t block_k = tuning().block_k;  // the k blocks gemm() will walk
  for (int64_t p = 0; p < K; p += block_k) {
    const int64_t kc = std::min(block_k, K - p);
    detail::pack_a(out + round_up(M, kMicroRows) * p, A.block(0, p), M, kc);
  }
}

// B packed once for several products (the chunk's X against every class range of dW): for each k
// block, each n block's micro-panels, in the order gemm() visits them. pack_b_blocks writes it; gemm
// takes it (for the same K and N) instead of packing B itself.
inline int64_t packed_b_size(int64_t K, int64_t N) { return round_up(N, kMicroCols) * K; }

inline void pack_b_blocks(float* out, MatrixView B, int64_t K, int64_t N) {
  const Tuning& blocks = tuning();
  for (int64_t p = 0; p < K; p += blocks.block_k) {
    const int64_t kc = std::min(blocks.block_k, K - p);
    for (int64_t j = 0; j < N; j += blocks.block_n)
      detail::pack_b(out + round_up(N, kMicroCols) * p + j * kc, B.block(p, j), kc, std::min(blocks.block_n, N - j));
  }
}

// C (M, N; ldc) = A . B (+ C when accumulate). A is a view, or (packed_a != nullptr) the output of
// pack_a_blocks for packed_rows rows (M when 0) and the same K, of which rows packed_offset (a
// multiple of kMicroRows) .. + M are used. B likewise is a view, or (packed_b != nullptr) the output
// of pack_b_blocks for the same K and N. The caller's `work` holds the packing buffers.
// a_in_place: A's whole micro-panels are read where they are, not packed, when each k step of a panel
// is contiguous (A.row_stride == 1; otherwise A is packed as usual). For a product with few B panels
// (small N), which a packed A block would serve too few times to pay for its copy; a partial panel is
// still packed, so nothing past A's M rows is read.
inline void gemm(int64_t M, int64_t N, int64_t K, MatrixView A, const float* packed_a, MatrixView B, float* C,
                 int64_t ldc, bool accumulate, Workspace& work, int64_t packed_rows = 0, int64_t packed_offset = 0,
                 const float* packed_b = nullptr, bool a_in_place = false) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  const Tuning& blocks = tuning();
  const int64_t block_k = blocks.block_k, block_n = blocks.block_n, block_m = blocks.block_m;
  work.reserve(blocks);
  const int64_t padded_m = round_up(packed_rows ? packed_rows : M, kMicroRows);
  const bool a_unpacked = a_in_place && !packed_a && A.row_stride == 1;
  for (int64_t jc = 0; jc < N; jc += block_n) {
    const int64_t nc = std::min(block_n, N - jc);
    for (int64_t pc = 0; pc < K; pc += block_k) {
      const int64_t kc = std::min(block_k, K - pc);
      const bool add = accumulate || pc > 0;
      const float* b_block = packed_b ? packed_b + round_up(N, kMicroCols) * pc + jc * kc : work.b.data();
      if (!packed_b) detail::pack_b(work.b.data(), B.block(pc, jc), kc, nc);
      const int64_t calls = (M + kMicroRows - 1) / kMicroRows * ((nc + kMicroCols - 1) / kMicroCols);
      // (a packed B has nothing left to fetch from its source)
      detail::BlockPrefetch prefetch = packed_b ? detail::BlockPrefetch() : detail::next_block(B, K, N, pc, jc, calls);
      for (int64_t ic = 0; ic < M; ic += block_m) {
        const int64_t mc = std::min(block_m, M - ic);
        const float* a_block;
        if (packed_a) {
          a_block = packed_a + padded_m * pc + (packed_offset + ic) * kc;
        } else if (a_unpacked) {
          a_block = nullptr;  // each panel below
        } else {
          detail::pack_a(work.a.data(), A.block(ic, pc), mc, kc);
          a_block = work.a.data();
        }
        // Along C's rows (see the top of the file). On the Intel Xeon, one large-vocabulary step at
        // B = 1024, D = 768, C = 50257 (benchmarks/bench_variant.py --measure large_vocab, three
        // alternating runs against the other order): 1.264-1.270 s -> 1.143-1.169 s, all of it in the
        // dW product (a one-off timing of the step without dW showed no change).
        for (int64_t ir = 0; ir < mc; ir += kMicroRows) {
          const int64_t rows = std::min<int64_t>(kMicroRows, mc - ir);
          const float* a_panel;
          int64_t a_step = kMicroRows;
          if (!a_unpacked) {
            a_panel = a_block + ir * kc;
          } else if (rows == kMicroRows) {
            a_panel = A.data + (ic + ir) + pc * A.col_stride, a_step = A.col_stride;
          } else {
            detail::pack_panel<kMicroRows>(work.a.data(), A.data + (ic + ir) + pc * A.col_stride, rows, kc, 1,
                                           A.col_stride);
            a_panel = work.a.data();
          }
          for (int64_t jr = 0; jr < nc; jr += kMicroCols) {
            const float* b_panel = b_block + jr * kc;
            const int64_t cols = std::min<int64_t>(kMicroCols, nc - jr);
            float* c = C + (ic + ir) * ldc + jc + jr;
            prefetch.step();
            if (rows == kMicroRows && cols == kMicroCols)
              detail::micro_kernel(kc, a_panel, a_step, b_panel, c, ldc, add);
            else
              detail::micro_kernel_edge(kc, a_panel, a_step, b_panel, c, ldc, add, rows, cols);
          }
        }
      }
    }
  }
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::gemm
