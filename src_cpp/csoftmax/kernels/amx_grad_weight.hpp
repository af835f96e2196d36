// The fused step's dW contribution of a group of uint8 rows on AMX tiles, in float32 precision:
//
//   dw[c][d] (+)= sum_r g[c][r] * x_rows[r][d]      (g: (C, G) class-major, G the group's stride)
//
// The same numbers as kernels/amx_logits.hpp, with the roles turned round: the gradients are split
// into three bf16 parts (A, rows of (part, class) pairs, part-major; K along the rows of the group)
// and the pixels go in as x * 2^-112 (B, in AMX's pair layout: pairs of rows, features along the
// columns). Each C tile's rows are one part's sums for a class, a vector along the features, so the
// three are added, smallest first, with no transpose.
//
// The gradients of a group are scaled by a power of two s that puts their largest magnitude m just
// under 2^15 before splitting, and the sums are scaled back by 1/s (exact). So every part is a normal
// bf16 and every product of a pixel and a part is a normal float32 for gradients down to m * 2^-117,
// far below what float32 sums of the group can hold; smaller ones flush to zero. A group with an
// inf or NaN gradient returns false and the caller takes the FMA path, which propagates it.
//
// Pairs of rows are interleaved byte-wise (vpunpcklbw) before they are widened, which within each
// 32 features orders the B tile "low" as features 0-7, 16-23 and "high" as 8-15, 24-31; the sums of
// the two are put back in order (vshuff32x4) before they are added to dw.
#pragma once

#include "csoftmax/variant.hpp"

#include "csoftmax/kernels/amx_logits.hpp"
#include "csoftmax/tuning.hpp"

#if CSOFTMAX_AMX_COMPILED

#include <cmath>

namespace csoftmax::CSOFTMAX_VARIANT {

namespace amx {

inline constexpr int kGradGroupClasses = 10;  // 30 (part, class) rows: two A tiles

// The largest |g| of a group's gradients, or -1 when one is inf or NaN.
CSOFTMAX_AMX_VECTOR_TARGET inline float largest_gradient(const float* g, int64_t classes, int64_t rows,
                                                         int64_t stride) {
  __m512 largest = _mm512_setzero_ps();
  __mmask16 not_finite = 0;
  for (int64_t c = 0; c < classes; ++c)
    for (int64_t r = 0; r < rows; r += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(first_lanes16(rows - r), g + c * stride + r);
      not_finite |= _mm512_fpclass_ps_mask(v, 0x99);  // QNaN, +inf, -inf, SNaN
      largest = _mm512_max_ps(largest, _mm512_abs_ps(v));
    }
  return not_finite ? -1.0f : _mm512_reduce_max_ps(largest);
}

// B tiles of 32 rows from `rows` (fewer at the group's end: zeros) and features f0 .. f0 + 31 (zeros
// past D): low[p] and high[p] hold the pixel pairs of rows 2p, 2p + 1 (see the file's comment). kFull:
// all 32 features are there, and the loads need no mask (an extra uop on Intel).
template <bool kFull>
CSOFTMAX_AMX_PIXEL_TARGET inline void row_pairs_to_bf16(uint16_t* low, uint16_t* high, const uint8_t* const* rows,
                                                        int64_t count, int64_t f0, __mmask32 mask) {
  for (int p = 0; p < kTileRows; ++p) {
    __m256i pair[2];
    for (int u = 0; u < 2; ++u) {
      if (2 * p + u >= count) {  // past the group's rows (and perhaps past `rows` itself)
        pair[u] = _mm256_setzero_si256();
        continue;
      }
      const uint8_t* x = rows[2 * p + u] + f0;
      pair[u] = kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)) : _mm256_maskz_loadu_epi8(mask, x);
    }
    _mm512_store_si512(low + p * kStepFeatures, pixels_to_bf16(_mm256_unpacklo_epi8(pair[0], pair[1])));
    _mm512_store_si512(high + p * kStepFeatures, pixels_to_bf16(_mm256_unpackhi_epi8(pair[0], pair[1])));
  }
}

// A tiles of one step of 32 rows for classes c0 .. c0 + g - 1: row part * g + c of the pair of tiles
// is part `part` of (g[c0 + c][k0 .. k0 + 32) * scale); rows past 3 g are 0.
CSOFTMAX_AMX_VECTOR_TARGET inline void gradient_parts(uint16_t* a, const float* g, int64_t stride, int64_t c0,
                                                      int64_t classes, int64_t k0, int64_t rows, float scale) {
  std::fill(a + 3 * classes * kStepFeatures, a + 2 * kTileWords, uint16_t{0});
  for (int64_t c = 0; c < classes; ++c) {
    __m512i parts[3];
    split_scaled(load_floats32(g + (c0 + c) * stride + k0, rows - k0), scale, parts);
    for (int part = 0; part < 3; ++part) _mm512_store_si512(a + (part * classes + c) * kStepFeatures, parts[part]);
  }
}

}  // namespace amx

namespace amx {

inline constexpr int kGroupSteps = 4;  // steps of 32 rows in a gradient group
static_assert(kGradientGroupRows <= kGroupSteps * kStepFeatures, "a group's rows fit kGroupSteps steps");

// One chunk of 32 features: its B tiles for every step of the group, [step][low, high].
struct ChunkTiles {
  alignas(64) uint16_t b[kGroupSteps][2][kTileWords];
};

// The B tiles of features f0 .. f0 + 31 for the group's `steps` steps.
CSOFTMAX_AMX_PIXEL_TARGET inline void chunk_to_bf16(ChunkTiles& tiles, const uint8_t* const* x_rows, int64_t rows,
                                                    int64_t steps, int64_t f0, int64_t D) {
  const bool full = D - f0 >= kStepFeatures;
  const __mmask32 mask = first_lanes32(D - f0);
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t k0 = step * kStepFeatures;
    if (full)
      row_pairs_to_bf16<true>(tiles.b[step][0], tiles.b[step][1], x_rows + k0, rows - k0, f0, mask);
    else
      row_pairs_to_bf16<false>(tiles.b[step][0], tiles.b[step][1], x_rows + k0, rows - k0, f0, mask);
  }
}

// The C tiles of one chunk, stored: [A tile][low, high], each 16 (part, class) rows of 16 sums.
struct ChunkSums {
  alignas(64) float c[2][2][kTileRows * kTileColumns];
};

// dw[c0 + c][f0 .. f0 + 32) (+)= ((lo + mid) + hi) / scale for the group's classes, the features
// put back in order (the file's comment).
CSOFTMAX_AMX_VECTOR_TARGET inline void add_chunk_sums(float* dw, const ChunkSums& sums, int64_t c0, int64_t classes,
                                                      int64_t f0, int64_t D, __m512 unscale, bool overwrite) {
  const int64_t left = D - f0;
  const __mmask16 first_mask = first_lanes16(left), second_mask = first_lanes16(left - 16);
  for (int64_t c = 0; c < classes; ++c) {
    __m512 half_sums[2];
    for (int half = 0; half < 2; ++half) {
      const float* rows[3];
      for (int part = 0; part < 3; ++part) {
        const int64_t j = part * classes + c;
        rows[part] = sums.c[j / kTileRows][half] + (j % kTileRows) * kTileColumns;
      }
      half_sums[half] = _mm512_add_ps(_mm512_add_ps(_mm512_load_ps(rows[2]), _mm512_load_ps(rows[1])),
                                      _mm512_load_ps(rows[0]));
    }
    float* out = dw + (c0 + c) * D + f0;
    const __m512 first = _mm512_mul_ps(_mm512_shuffle_f32x4(half_sums[0], half_sums[1], 0x44), unscale);  // 0-15
    const __m512 second = _mm512_mul_ps(_mm512_shuffle_f32x4(half_sums[0], half_sums[1], 0xEE), unscale);  // 16-31
    _mm512_mask_storeu_ps(out, first_mask,
                          overwrite ? first : _mm512_add_ps(_mm512_maskz_loadu_ps(first_mask, out), first));
    _mm512_mask_storeu_ps(out + 16, second_mask,
                          overwrite ? second : _mm512_add_ps(_mm512_maskz_loadu_ps(second_mask, out + 16), second));
  }
}

}  // namespace amx

// dw (C, D) (+)= g (C, rows; stride G) . x_rows (rows, D); overwritten when `overwrite`. False (and dw
// untouched) when some gradient is inf or NaN. In a thread that holds an AmxTileScope.
//
// The chunks of 32 features are pipelined: chunk i + 1's pixels are converted before chunk i's tiles
// are multiplied, and chunk i - 1's sums are added to dw after, so that no tile load waits for the
// stores just before it (tile loads and stores do not forward to or from the vector units' accesses).
__attribute__((target("amx-tile,amx-bf16,avx512fp16,avx512bw,avx512vl,avx512dq"), noinline)) inline bool
amx_grad_weight(float* dw, const uint8_t* const* x_rows, int64_t rows, const float* g, int64_t G, int64_t C,
                int64_t D, bool overwrite) {
  const float largest = amx::largest_gradient(g, C, rows, G);
  if (largest < 0.0f) return false;
  int exponent = 0;
  std::frexp(largest, &exponent);  // largest < 2^exponent
  const float scale = largest > 0.0f ? std::ldexp(1.0f, 15 - exponent) : 1.0f;  // largest * scale < 2^15
  const __m512 unscale = _mm512_set1_ps(1.0f / scale);
  const int64_t steps = (rows + amx::kStepFeatures - 1) / amx::kStepFeatures;
  const int64_t chunks = (D + amx::kStepFeatures - 1) / amx::kStepFeatures;
  alignas(64) uint16_t a[amx::kGroupSteps][2 * amx::kTileWords];  // the group's A tiles, per step
  amx::ChunkTiles b[2];
  amx::ChunkSums sums[2];
  for (int64_t c0 = 0; c0 < C; c0 += amx::kGradGroupClasses) {
    const int64_t classes = std::min<int64_t>(amx::kGradGroupClasses, C - c0);
    for (int64_t step = 0; step < steps; ++step)
      amx::gradient_parts(a[step], g, G, c0, classes, step * amx::kStepFeatures, rows, scale);
    amx::chunk_to_bf16(b[0], x_rows, rows, steps, 0, D);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      if (chunk + 1 < chunks)
        amx::chunk_to_bf16(b[(chunk + 1) & 1], x_rows, rows, steps, (chunk + 1) * amx::kStepFeatures, D);
      const amx::ChunkTiles& tiles = b[chunk & 1];
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t step = 0; step < steps; ++step) {
        _tile_loadd(4, a[step], 64);
        _tile_loadd(5, a[step] + amx::kTileWords, 64);
        _tile_loadd(6, tiles.b[step][0], 64);
        _tile_loadd(7, tiles.b[step][1], 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      amx::ChunkSums& out = sums[chunk & 1];
      _tile_stored(0, out.c[0][0], 64);
      _tile_stored(1, out.c[0][1], 64);
      _tile_stored(2, out.c[1][0], 64);
      _tile_stored(3, out.c[1][1], 64);
      if (chunk > 0)
        amx::add_chunk_sums(dw, sums[(chunk - 1) & 1], c0, classes, (chunk - 1) * amx::kStepFeatures, D, unscale,
                            overwrite);
    }
    amx::add_chunk_sums(dw, sums[(chunks - 1) & 1], c0, classes, (chunks - 1) * amx::kStepFeatures, D, unscale,
                        overwrite);
  }
  return true;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT

#endif  // CSOFTMAX_AMX_COMPILED
