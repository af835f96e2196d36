// The large-vocabulary kernel's float32 products on AMX tiles: C (+)= A . B in float32 precision.
//
// The FMA sgemm (kernels/gemm.hpp) runs at most 2 x 16 multiply-adds per cycle; TDPBF16PS does
// 16 x 16 x 32 bf16 multiply-adds in about 16 cycles, on a unit of its own. bf16 holds 8 significant
// bits, so each float32 goes in as three bf16 parts that sum to it exactly (split_bf16x3: hi, mid
// and lo, each rounded to nearest from what the ones before left), and a product a b is taken as the
// six part products whose size is at least 2^-16 of it:
//   a0 b0 + (a0 b1 + a1 b0) + (a0 b2 + a1 b1 + a2 b0),   dropping a1 b2, a2 b1, a2 b2 (< 2^-23 |a b|).
// The parts' products are exact in float32 and are summed in float32 in one accumulator per element
// (the tile's), in the order the tiles are multiplied: six chains of 32 products per 32 steps of k.
// So an element carries float32 summation error over 6 K terms, against K for the FMA sgemm: its
// bound is (6 K + 2) u sum_k |a_ik b_kj| (u = 2^-24) instead of K u sum_k |a_ik b_kj|. Observed on
// random data: at most 3 u sum_k |a_ik b_kj|, as NumPy's float32 matmul (tests/test_amx_products.py).
//
// Range. bf16 has float32's exponent range, but AMX reads subnormal bf16 as zero and flushes
// subnormal results. So each row of A and each column of B is first scaled by a power of two that
// puts its largest |value| in [1, 2) (in [1, 4) past 2^126), and C is scaled back, exactly (powers
// of two), when it is written. What remains is an absolute floor of about 2^-100 times the row's
// largest |a| times the column's largest |b| (a value of a row below 2^-100 of that row's largest may
// lose its low parts). amx_pack_lines, which packs a tile of W, scales all its lines by one power
// of two (from the tile's largest |w|), so there the floor is relative to the tile's largest. A non-finite value anywhere, a row or column whose largest |value| is subnormal, or a
// depth past kAmxMaxDepth returns false: the caller runs the FMA sgemm instead, which propagates inf
// and NaN as float32 does.
//
// Layout. A is packed in blocks of 16 rows; each block, for each step of 32 k, holds three tiles (one
// per part) of 16 rows x 32 bf16. B is packed in blocks of 16 columns; each block, for each step,
// holds three tiles in AMX's pair layout (row p: for each column, the parts of k = 2p and 2p + 1).
// The register kernel keeps a 32 x 32 block of C in four tiles and takes the other four for two A
// and two B tiles; it loads each B tile once per step and each A tile twice or once.
//
// Like gemm.hpp, every element of C depends on (M, N, K), the strides and the values only: a call
// gives bit-identical results whichever thread runs it.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "csoftmax/amx_support.hpp"
#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/amx_logits.hpp"
#include "csoftmax/kernels/gemm.hpp"
#include "csoftmax/machine.hpp"

#if CSOFTMAX_AMX_COMPILED
#include <immintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT::gemm {

// One operand packed for amx_multiply: the rows of an A (m, k) or the columns of a B (k, n), each
// line times a power of two, in blocks of 16 lines (see the top). Reused across calls.
struct AmxOperand {
  LineAlignedVector<uint16_t> words;
  std::vector<float> scale, unscale;  // per line: the power of two applied, and its inverse
  int64_t lines = 0, depth = 0;
  int64_t steps() const { return (depth + 31) / 32; }  // amx_products::kStepFeatures
  int64_t block_words() const { return steps() * 3 * 512; }  // kParts tiles of kTileWords per step
  // The block of zeros after the last (prepare writes it), which an odd last block pairs with.
  const uint16_t* zero_block() const { return words.data() + words.size() - block_words(); }
};

#if CSOFTMAX_AMX_COMPILED

// The depth past which a block of 32 lines of both operands (32 x 6 bytes per step of k, for each)
// would crowd L2: the caller runs the FMA sgemm.
inline constexpr int64_t kAmxMaxDepth = 2048;

// Whether a line whose largest |value| is `largest` has a power of two that scales it into [1, 2):
// 0 (a line of zeros) or a normal float; not a subnormal, inf or NaN.
inline bool amx_scales_exactly(float largest) { return largest == 0.0f || std::isnormal(largest); }

namespace amx_products {

using amx::kStepFeatures;  // k per step: 32
using amx::kTileRows;      // 16
using amx::kTileWords;     // 512 bf16 per tile
inline constexpr int kParts = 3;
inline constexpr int64_t kStepWords = kParts * kTileWords;  // one step of one 16-row (or column) block

#define CSOFTMAX_AMX_GEMM_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// 16 bf16 as floats.
CSOFTMAX_AMX_GEMM_TARGET inline __m512 widened(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

// The 32 floats (low, high) as three parts of 32 bf16 each, in order: low + high = hi + mid + lo
// exactly when the values are normal and their parts too (scaled into [2^-100, 4), see the top).
CSOFTMAX_AMX_GEMM_TARGET inline void split_bf16x3(__m512 low, __m512 high, __m512i part[kParts]) {
  for (int p = 0; p < kParts; ++p) {
    part[p] = (__m512i)_mm512_cvtne2ps_pbh(high, low);
    if (p + 1 < kParts) {  // what this part left: exact (the part is the value rounded to 8 bits)
      low = _mm512_sub_ps(low, widened(_mm512_castsi512_si256(part[p])));
      high = _mm512_sub_ps(high, widened(_mm512_extracti64x4_epi64(part[p], 1)));
    }
  }
}

// Words 0-15 and 16-31 of w, interleaved: (w0, w16, w1, w17, ...). Two rows of k, side by side in
// one vector, become one row of AMX's pair layout.
CSOFTMAX_AMX_GEMM_TARGET inline __m512i interleave_halves(__m512i w) {
  const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                         6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(order, w);
}

// The largest |value| of each row of the (m, k) view (k contiguous, or m contiguous): false on a
// non-finite value.
CSOFTMAX_AMX_GEMM_TARGET inline bool row_maxima(MatrixView v, int64_t m, int64_t k, float* out) {
  const __m512 inf = _mm512_set1_ps(INFINITY);
  __mmask16 bad = 0;
  if (v.col_stride == 1) {
    for (int64_t i = 0; i < m; ++i) {
      const float* row = v.data + i * v.row_stride;
      __m512 top = _mm512_setzero_ps();
      for (int64_t j = 0; j < k; j += 16) {
        const __m512 x = _mm512_abs_ps(_mm512_maskz_loadu_ps(amx::first_lanes16(k - j), row + j));
        bad |= _mm512_cmp_ps_mask(x, inf, _CMP_NLT_UQ);  // inf or NaN
        top = _mm512_max_ps(top, x);
      }
      out[i] = _mm512_reduce_max_ps(top);
    }
  } else if (v.row_stride == 1) {
    for (int64_t i = 0; i < m; i += 16) {
      const __mmask16 lanes = amx::first_lanes16(m - i);
      __m512 top = _mm512_setzero_ps();
      for (int64_t j = 0; j < k; ++j) {
        const __m512 x = _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, v.data + i + j * v.col_stride));
        bad |= _mm512_cmp_ps_mask(x, inf, _CMP_NLT_UQ);
        top = _mm512_max_ps(top, x);
      }
      _mm512_mask_storeu_ps(out + i, lanes, top);
    }
  } else {
    return false;  // no layout the large-vocabulary kernel passes
  }
  return bad == 0;
}

// scale[i] = 2^-e and unscale[i] = 2^e, with e the exponent of largest[i] (at most 126, so both are
// normal floats): false when a largest value does not scale exactly (amx_scales_exactly).
inline bool powers_of_two(const float* largest, int64_t n, float* scale, float* unscale) {
  for (int64_t i = 0; i < n; ++i) {
    if (!amx_scales_exactly(largest[i])) return false;
    if (largest[i] == 0.0f) {
      scale[i] = unscale[i] = 1.0f;
      continue;
    }
    const int e = std::min(std::ilogb(largest[i]), 126);
    scale[i] = std::ldexp(1.0f, -e);
    unscale[i] = std::ldexp(1.0f, e);
  }
  return true;
}

// One block of 16 rows (rows >= m zero) of A (m, k), times its rows' scales, into `out`: for each step
// of 32 k, three 16 x 32 tiles.
CSOFTMAX_AMX_GEMM_TARGET inline void pack_a_block(uint16_t* out, MatrixView A, int64_t m, int64_t k,
                                                  const float* scale) {
  const int64_t steps = (k + kStepFeatures - 1) / kStepFeatures;
  __m512i part[kParts];
  if (A.col_stride == 1) {
    for (int r = 0; r < kTileRows; ++r) {
      const float* row = A.data + r * A.row_stride;
      const __m512 by = _mm512_set1_ps(r < m ? scale[r] : 0.0f);
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t j = s * kStepFeatures, left = r < m ? k - j : 0;
        const __m512 low = _mm512_maskz_loadu_ps(amx::first_lanes16(left), row + j);
        const __m512 high = _mm512_maskz_loadu_ps(amx::first_lanes16(left - 16), row + j + 16);
        split_bf16x3(_mm512_mul_ps(low, by), _mm512_mul_ps(high, by), part);
        for (int p = 0; p < kParts; ++p)
          _mm512_store_si512(out + s * kStepWords + p * kTileWords + r * kStepFeatures, part[p]);
      }
    }
    return;
  }
  // rows contiguous (a transposed view): 16 x 16 blocks transposed in registers
  const __mmask16 lanes = amx::first_lanes16(m);
  const __m512 by = _mm512_maskz_loadu_ps(lanes, scale);
  for (int64_t s = 0; s < steps; ++s) {
    __m512 columns[2][16];
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 16; ++c) {
        const int64_t j = s * kStepFeatures + h * 16 + c;
        columns[h][c] = j < k ? _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, A.data + j * A.col_stride), by)
                              : _mm512_setzero_ps();
      }
    detail::transpose16(columns[0]);
    detail::transpose16(columns[1]);
    for (int r = 0; r < kTileRows; ++r) {
      split_bf16x3(columns[0][r], columns[1][r], part);
      for (int p = 0; p < kParts; ++p)
        _mm512_store_si512(out + s * kStepWords + p * kTileWords + r * kStepFeatures, part[p]);
    }
  }
}

// Rows k = 2 pair, 2 pair + 1 of step s of one block of 16 columns (columns >= n zero) of B (k, n)
// whose rows run along n, times the columns' scales: one row of each part's tile in `out` (the block).
CSOFTMAX_AMX_GEMM_TARGET inline void pack_b_pair(uint16_t* out, MatrixView B, int64_t k, int64_t n,
                                                 const float* scale, int64_t s, int pair) {
  const __mmask16 lanes = amx::first_lanes16(n);
  const __m512 by = _mm512_maskz_loadu_ps(lanes, scale);
  const int64_t j = s * kStepFeatures + 2 * pair;
  const __m512 even = j < k ? _mm512_maskz_loadu_ps(lanes, B.data + j * B.row_stride) : _mm512_setzero_ps();
  const __m512 odd = j + 1 < k ? _mm512_maskz_loadu_ps(lanes, B.data + (j + 1) * B.row_stride) : _mm512_setzero_ps();
  __m512i part[kParts];
  split_bf16x3(_mm512_mul_ps(even, by), _mm512_mul_ps(odd, by), part);
  for (int p = 0; p < kParts; ++p)
    _mm512_store_si512(out + s * kStepWords + p * kTileWords + pair * kStepFeatures, interleave_halves(part[p]));
}

// One block of 16 columns (columns >= n zero) of B (k, n) whose columns run along k (a transposed
// view), times the columns' scales, into `out`: for each step of 32 k, three tiles in the pair layout.
CSOFTMAX_AMX_GEMM_TARGET inline void pack_b_block_transposed(uint16_t* out, MatrixView B, int64_t k, int64_t n,
                                                             const float* scale) {
  const int64_t steps = (k + kStepFeatures - 1) / kStepFeatures;
  __m512i part[kParts];
  for (int64_t s = 0; s < steps; ++s) {
    __m512i pairs[kParts][16];
    const int64_t j = s * kStepFeatures;
    for (int c = 0; c < 16; ++c) {
      const int64_t left = c < n ? k - j : 0;
      const float* column = c < n ? B.data + c * B.col_stride + j : B.data;
      const __m512 by = _mm512_set1_ps(c < n ? scale[c] : 0.0f);
      const __m512 low = _mm512_maskz_loadu_ps(amx::first_lanes16(left), column);
      const __m512 high = _mm512_maskz_loadu_ps(amx::first_lanes16(left - 16), column + 16);
      split_bf16x3(_mm512_mul_ps(low, by), _mm512_mul_ps(high, by), part);
      for (int p = 0; p < kParts; ++p) pairs[p][c] = part[p];
    }
    for (int p = 0; p < kParts; ++p) {
      amx::transpose_16x16(pairs[p]);
      for (int pair = 0; pair < kTileRows; ++pair)
        _mm512_store_si512(out + s * kStepWords + p * kTileWords + pair * kStepFeatures, pairs[p][pair]);
    }
  }
}

// The register kernel: sums (32 x 32 floats, row stride 32) = the products of two 16-row blocks of A
// (a, a + a_block) and two 16-column blocks of B (b, b + b_block) over `steps` steps; each step takes
// the six part products a_i b_j, i + j <= 2, by B part.
__attribute__((target("amx-tile,amx-bf16"), noinline)) inline void kernel_2x2(int64_t steps, const uint16_t* a,
                                                                               int64_t a_block, const uint16_t* b,
                                                                               int64_t b_block, float* sums) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  constexpr int kRowBytes = kStepFeatures * 2;
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t *a0 = a + s * kStepWords, *a1 = a0 + a_block;
    const uint16_t *b0 = b + s * kStepWords, *b1 = b0 + b_block;
    // b part 0 with a parts 0, 1, 2; b part 1 with a parts 0, 1; b part 2 with a part 0
    for (int bp = 0; bp < kParts; ++bp) {
      _tile_loadd(6, b0 + bp * kTileWords, kRowBytes);
      _tile_loadd(7, b1 + bp * kTileWords, kRowBytes);
      for (int ap = 0; ap + bp < kParts; ++ap) {
        _tile_loadd(4, a0 + ap * kTileWords, kRowBytes);
        _tile_loadd(5, a1 + ap * kTileWords, kRowBytes);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  constexpr int kSumBytes = 32 * sizeof(float);
  _tile_stored(0, sums, kSumBytes);
  _tile_stored(1, sums + 16, kSumBytes);
  _tile_stored(2, sums + 16 * 32, kSumBytes);
  _tile_stored(3, sums + 16 * 32 + 16, kSumBytes);
}

// C[i, j] (+)= sums[i, j] row_unscale[i] column_unscale[j] for the rows x columns (<= 32 x 32) in use.
// Both scales (powers of two) are applied at once, by their exponents' sum (vscalefps): one after the
// other could overflow (a row of 2^126, a column of 2^-126) where the product does not.
CSOFTMAX_AMX_GEMM_TARGET inline void write_block(float* C, int64_t ldc, const float* sums, int64_t rows,
                                                 int64_t columns, const float* row_unscale,
                                                 const float* column_unscale, bool accumulate) {
  // the exponents of the scales (lanes past the rows or columns: getexp(1) = 0, never used)
  const __m512 one = _mm512_set1_ps(1.0f);
  alignas(64) float row_exponent[32];
  for (int h = 0; h < 2; ++h)
    _mm512_store_ps(row_exponent + 16 * h,
                    _mm512_getexp_ps(_mm512_mask_loadu_ps(one, amx::first_lanes16(rows - 16 * h), row_unscale + 16 * h)));
  for (int h = 0; h < 2; ++h) {
    const __mmask16 lanes = amx::first_lanes16(columns - 16 * h);
    if (!lanes) break;
    const __m512 column_exponent = _mm512_getexp_ps(_mm512_mask_loadu_ps(one, lanes, column_unscale + 16 * h));
    for (int64_t i = 0; i < rows; ++i) {
      float* c = C + i * ldc + 16 * h;
      const __m512 exponent = _mm512_add_ps(column_exponent, _mm512_set1_ps(row_exponent[i]));
      __m512 v = _mm512_scalef_ps(_mm512_loadu_ps(sums + i * 32 + 16 * h), exponent);
      if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, c), v);
      _mm512_mask_storeu_ps(c, lanes, v);
    }
  }
}


// Sizes `out` for `lines` lines of `depth` and sets their scales from their largest |values|.
inline bool prepare(AmxOperand& out, int64_t lines, int64_t depth) {
  out.lines = lines;
  out.depth = depth;
  out.scale.resize(static_cast<size_t>(lines));
  out.unscale.resize(static_cast<size_t>(lines));
  const int64_t blocks = (lines + kTileRows - 1) / kTileRows;
  out.words.resize(static_cast<size_t>((blocks + 1) * out.block_words()));  // + 1: a zero block pairs an odd one
  std::fill(out.words.begin() + blocks * out.block_words(), out.words.end(), uint16_t{0});
  return powers_of_two(out.unscale.data(), lines, out.scale.data(), out.unscale.data());
}

// Words n .. n + 15 of x and of y, interleaved: (x_n, y_n, x_n+1, y_n+1, ...), n = 16 half.
CSOFTMAX_AMX_GEMM_TARGET inline __m512i interleave_words(__m512i x, __m512i y, int half) {
  const __m512i low = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                       37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i order = _mm512_add_epi16(low, _mm512_set1_epi16(static_cast<short>(16 * half)));
  return _mm512_permutex2var_epi16(x, order, y);
}

// One group of 16 lines (g, lines >= L zero) of an (L, Q) matrix whose lines are contiguous (row
// stride `stride`), times `scale`, into both operands at once: by_lines (its lines are the L lines,
// its depth Q: block g) and by_depth (its lines are the Q columns, its depth L: rows 8 (g % 2) .. + 7
// of step g / 2 of every block). Either may be null.
CSOFTMAX_AMX_GEMM_TARGET inline void pack_line_group(AmxOperand* by_lines, AmxOperand* by_depth, const float* data,
                                                     int64_t stride, int64_t L, int64_t Q, int64_t g, float scale) {
  const int64_t steps = (Q + kStepFeatures - 1) / kStepFeatures;
  const __m512 by = _mm512_set1_ps(scale);
  for (int64_t s = 0; s < steps; ++s) {
    __m512i parts[kParts][16];
    for (int l = 0; l < 16; ++l) {
      const int64_t line = g * 16 + l, j = s * kStepFeatures, left = line < L ? Q - j : 0;
      const float* row = line < L ? data + line * stride + j : data;
      const __m512 low = _mm512_maskz_loadu_ps(amx::first_lanes16(left), row);
      const __m512 high = _mm512_maskz_loadu_ps(amx::first_lanes16(left - 16), row + 16);
      __m512i part[kParts];
      split_bf16x3(_mm512_mul_ps(low, by), _mm512_mul_ps(high, by), part);
      for (int p = 0; p < kParts; ++p) parts[p][l] = part[p];
    }
    // by_depth: rows of pairs of lines, 16 columns of Q each (the step's two blocks of Q)
    for (int h = 0; by_depth && h < 2; ++h) {
      uint16_t* block = by_depth->words.data() + (g / 2) * kStepWords + (2 * s + h) * by_depth->block_words();
      for (int p = 0; p < kParts; ++p)
        for (int q = 0; q < 8; ++q)
          _mm512_store_si512(block + p * kTileWords + (8 * (g % 2) + q) * kStepFeatures,
                             interleave_words(parts[p][2 * q], parts[p][2 * q + 1], h));
    }
    // by_lines: each line's pairs of Q, transposed
    if (!by_lines) continue;
    uint16_t* lines_step = by_lines->words.data() + g * by_lines->block_words() + s * kStepWords;
    for (int p = 0; p < kParts; ++p) {
      amx::transpose_16x16(parts[p]);
      for (int pair = 0; pair < kTileRows; ++pair)
        _mm512_store_si512(lines_step + p * kTileWords + pair * kStepFeatures, parts[p][pair]);
    }
  }
}

// Sizes `out` for `lines` lines of `depth` (at most kAmxMaxDepth) and sets their scales from their
// largest |values|: `largest` when given (known to the caller), else found in `lines_view` (the lines
// as the rows of a view). False where one is not finite or is subnormal.
inline bool prepare_lines(AmxOperand& out, MatrixView lines_view, int64_t lines, int64_t depth, const float* largest) {
  if (lines <= 0 || depth <= 0 || depth > kAmxMaxDepth) return false;
  out.unscale.resize(static_cast<size_t>(lines));
  if (largest) std::copy(largest, largest + lines, out.unscale.begin());
  else if (!row_maxima(lines_view, lines, depth, out.unscale.data())) return false;
  return prepare(out, lines, depth);
}

}  // namespace amx_products

// A (m, k) packed as the rows of amx_multiply's left operand. `largest`, when given, holds each row's
// largest |value| (known to the caller), else it is found here. False, with `out` unusable, where
// the FMA sgemm must run instead (see the top).
inline bool amx_pack_a(AmxOperand& out, MatrixView A, int64_t m, int64_t k, const float* largest = nullptr) {
  using namespace amx_products;
  if (!prepare_lines(out, A, m, k, largest)) return false;
  for (int64_t rb = 0; rb * kTileRows < m; ++rb)
    pack_a_block(out.words.data() + rb * out.block_words(), A.block(rb * kTileRows, 0), m - rb * kTileRows, k,
                 out.scale.data() + rb * kTileRows);
  return true;
}

// B (k, n) packed as the columns of amx_multiply's right operand; `largest` as for amx_pack_a, per
// column.
inline bool amx_pack_b(AmxOperand& out, MatrixView B, int64_t k, int64_t n, const float* largest = nullptr) {
  using namespace amx_products;
  if (!prepare_lines(out, B.transposed(), n, k, largest)) return false;
  const int64_t blocks = (n + kTileRows - 1) / kTileRows;
  if (B.col_stride == 1) {
    // rows of B along n: all blocks of a pair of rows before the next pair, so that each row is read
    // along its length; each new row starts a page the prefetchers have not seen, so the rows kAhead
    // pairs on are fetched, a line of each per block.
    constexpr int64_t kAhead = 2;
    for (int64_t s = 0; s < out.steps(); ++s)
      for (int pair = 0; pair < kTileRows; ++pair) {
        const int64_t ahead = s * kStepFeatures + 2 * (pair + kAhead);
        const float* even = B.data + std::min(ahead, k - 1) * B.row_stride;
        const float* odd = B.data + std::min(ahead + 1, k - 1) * B.row_stride;
        for (int64_t cb = 0; cb < blocks; ++cb) {
          __builtin_prefetch(even + cb * kTileRows);
          __builtin_prefetch(odd + cb * kTileRows);
          pack_b_pair(out.words.data() + cb * out.block_words(), B.block(0, cb * kTileRows), k, n - cb * kTileRows,
                      out.scale.data() + cb * kTileRows, s, pair);
        }
      }
  } else {
    for (int64_t cb = 0; cb < blocks; ++cb)
      pack_b_block_transposed(out.words.data() + cb * out.block_words(), B.block(0, cb * kTileRows), k,
                              n - cb * kTileRows, out.scale.data() + cb * kTileRows);
  }
  return true;
}

// An (L, Q) matrix whose lines are contiguous (row stride `stride`) packed, in one pass, for the
// products that read it: by_lines as the right operand of depth Q with L columns (the matrix
// transposed), by_depth as the right operand of depth L with Q columns (the matrix itself); either
// may be null. One scale serves every line of both, from `largest`, the largest |value| of the whole
// matrix (a tile of W). Read 16 lines at a time, along them, which the prefetchers follow. False
// where `largest` is not finite or is subnormal, or a depth is too deep.
inline bool amx_pack_lines(AmxOperand* by_lines, AmxOperand* by_depth, const float* data, int64_t stride, int64_t L,
                           int64_t Q, float largest) {
  using namespace amx_products;
  if (L <= 0 || Q <= 0 || (by_lines && Q > kAmxMaxDepth) || (by_depth && L > kAmxMaxDepth)) return false;
  float scale = 0.0f;
  if (by_lines) {
    by_lines->unscale.assign(static_cast<size_t>(L), largest);
    if (!prepare(*by_lines, L, Q)) return false;
    scale = by_lines->scale[0];
  }
  if (by_depth) {
    by_depth->unscale.assign(static_cast<size_t>(Q), largest);
    if (!prepare(*by_depth, Q, L)) return false;
    scale = by_depth->scale[0];
  }
  const int64_t groups = 2 * ((L + 31) / 32);  // whole steps of by_depth (a last odd group packs zeros)
  for (int64_t g = 0; g < groups; ++g) pack_line_group(by_lines, by_depth, data, stride, L, Q, g, scale);
  return true;
}

// C (m, n; ldc) = A . B (+ C when accumulate) for rows row0 .. + m of the packed A and columns
// col0 .. + n of the packed B (row0 and col0 multiples of 16; the same depth), in a thread that may
// use AMX (amx_support().usable).
inline void amx_multiply(const AmxOperand& a, int64_t row0, int64_t m, const AmxOperand& b, int64_t col0, int64_t n,
                         float* C, int64_t ldc, bool accumulate) {
  using namespace amx_products;
  const int64_t a_block = a.block_words(), b_block = b.block_words();
  const int64_t row_blocks = (m + kTileRows - 1) / kTileRows, column_blocks = (n + kTileRows - 1) / kTileRows;
  const AmxTileScope tiles(true);
  // Each block's sums are written to C after the next block's kernel is issued, from the other of two
  // buffers: the vector epilogue then overlaps the tiles' work instead of waiting for it.
  alignas(64) float sums[2][32 * 32];
  struct Block {
    float* c;
    int64_t rows, columns, i, j;
  } pending{nullptr, 0, 0, 0, 0};
  auto write = [&](const Block& done, const float* done_sums) {
    write_block(done.c, ldc, done_sums, done.rows, done.columns, a.unscale.data() + row0 + done.i,
                b.unscale.data() + col0 + done.j, accumulate);
  };
  int buffer = 0;
  for (int64_t rb = 0; rb < row_blocks; rb += 2)
    for (int64_t cb = 0; cb < column_blocks; cb += 2) {
      const int64_t i = rb * kTileRows, j = cb * kTileRows;
      // an odd last block pairs with the zero block past the operand's (or with a block of lines
      // beyond row0 + m: computed, and not written)
      const uint16_t* a0 = a.words.data() + (row0 / kTileRows + rb) * a_block;
      const uint16_t* b0 = b.words.data() + (col0 / kTileRows + cb) * b_block;
      const bool a_pair = row0 + i + kTileRows < a.lines, b_pair = col0 + j + kTileRows < b.lines;
      kernel_2x2(a.steps(), a0, a_pair ? a_block : a.zero_block() - a0, b0, b_pair ? b_block : b.zero_block() - b0,
                 sums[buffer]);
      if (pending.c) write(pending, sums[buffer ^ 1]);
      pending = Block{C + i * ldc + j, std::min<int64_t>(32, m - i), std::min<int64_t>(32, n - j), i, j};
      buffer ^= 1;
    }
  if (pending.c) write(pending, sums[buffer ^ 1]);
}

// The largest |value| of each row of the (m, k) view A (k or m contiguous) into out: false on a
// non-finite value (inf, NaN) or another layout.
inline bool amx_largest(MatrixView A, int64_t m, int64_t k, float* out) { return amx_products::row_maxima(A, m, k, out); }

#else  // a variant without AMX: nothing is ever packed, so amx_multiply is never reached

inline constexpr int64_t kAmxMaxDepth = 0;
inline bool amx_pack_a(AmxOperand&, MatrixView, int64_t, int64_t, const float* = nullptr) { return false; }
inline bool amx_pack_b(AmxOperand&, MatrixView, int64_t, int64_t, const float* = nullptr) { return false; }
inline bool amx_pack_lines(AmxOperand*, AmxOperand*, const float*, int64_t, int64_t, int64_t, float) { return false; }
inline void amx_multiply(const AmxOperand&, int64_t, int64_t, const AmxOperand&, int64_t, int64_t, float*, int64_t,
                         bool) {}
inline bool amx_largest(MatrixView, int64_t, int64_t, float*) { return false; }
inline bool amx_scales_exactly(float) { return false; }

#endif  // CSOFTMAX_AMX_COMPILED

}  // namespace csoftmax::CSOFTMAX_VARIANT::gemm
