// Predicted labels of uint8 rows by integer dot products, with a proof for each row.
//
// argmax(x_scale * x . W + b) needs only the order of the logits, not their values. AVX512-VNNI's
// vpdpwssd does 32 int16 multiply-adds an instruction where a float32 FMA does 16, at the same rate
// (one 512-bit instruction a cycle each on the AMD EPYC Zen 4, a one-off loop of 12 chains). So each
// class's weights are rounded to int16 levels of a power-of-two step s_c, q = round(W / s_c), and
//   I_c = sum_k x_k q_kc     exactly, in int32 (the levels are capped so no sum can overflow),
//   A_c = x_scale * s_c * I_c + b_c,    in float64,
// which differs from the exact logit by at most
//   R_c = |x_scale| * E_c * S,    E_c = max_k |W_kc - s_c q_kc|,  S = sum_k x_k,
// plus float64 rounding, which a relative margin covers. Where the first largest A_t exceeds every
// other class by both bounds, A_t - R_t > A_c + R_c, class t is the exact argmax: the row's label is
// proven. The others (near-ties, equal classes) are left to the float32 forward, so every label is
// either exact or the float32 kernel's. On Fashion-MNIST with the chapter's trained weights nearly
// every row is proven (tests/test_vnni_argmax.py).
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/linear_tiles.hpp"
#include "csoftmax/kernels/weights.hpp"
#include "csoftmax/tuning.hpp"
#include "csoftmax/vnni_support.hpp"

#if CSOFTMAX_VNNI_COMPILED
#include <immintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

// W as int16 levels, class-major, each class row padded with zero levels to a whole number of
// vpdpwssd steps (32 features); and what turns a row's integer sums into logits and their bounds.
struct VnniWeights {
  LineAlignedVector<int16_t> levels;  // (classes, padded_features)
  std::vector<double> step;           // s_c, a power of two
  std::vector<double> error;          // E_c, the largest rounding error of class c's weights
  std::vector<double> bias;
  int64_t classes = 0;
  int64_t features = 0;
  int64_t padded_features = 0;
};

#if CSOFTMAX_VNNI_COMPILED
namespace vnni {

inline constexpr int kLanes = 16;          // int32 lanes of a zmm register: the lane tile's rows
inline constexpr int kStepFeatures = 32;   // int16 features of a zmm register: one vpdpwssd step
inline constexpr int kLevelCap = 32767;    // int16
// The register tile: kTileRows rows x kTileClasses classes of int32 accumulators, each step widening
// kTileRows row vectors of 32 pixels to int16 and loading kTileClasses level vectors.
inline constexpr int kTileRows = 4;
inline constexpr int kTileClasses = 5;
// Below this many levels a class's rounding error is so large that few rows would be proven.
inline constexpr int kMinLevels = 1024;

// The largest level magnitude for which no int32 sum can overflow: every partial sum the kernel forms
// (per lane, then across lanes) is bounded by 255 * padded_features * levels.
inline int level_limit(int64_t padded_features) {
  const int64_t limit = std::numeric_limits<int32_t>::max() / (255 * padded_features);
  return static_cast<int>(std::min<int64_t>(kLevelCap, limit));
}

#define CSOFTMAX_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// One class's weights as levels of a power-of-two step: the smallest step s with largest / s < cap, so
// every level q = round(w / s) fits, and s * q and w - s * q are exact in float64. Returns the step and
// the largest |w - s q|, or a step of 0 where a weight is not finite. qc: the class's padded levels.
struct ClassLevels {
  double step;
  double error;
};
CSOFTMAX_VNNI_TARGET inline ClassLevels round_class(const float* wc, int64_t D, int cap, int16_t* qc) {
  __m512 largest = _mm512_setzero_ps();
  __mmask16 not_finite = 0;
  for (int64_t k = 0; k < D; k += 16) {
    const __mmask16 mask = D - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (D - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mask, wc + k);
    constexpr int kNanOrInfinity = 0x01 | 0x08 | 0x10 | 0x80;  // quiet NaN, +inf, -inf, signalling NaN
    not_finite |= _mm512_mask_fpclass_ps_mask(mask, v, kNanOrInfinity);
    largest = _mm512_max_ps(largest, _mm512_abs_ps(v));
  }
  if (not_finite) return {0.0, 0.0};
  const double biggest = _mm512_reduce_max_ps(largest);
  int exponent = 0;
  std::frexp(biggest / cap, &exponent);
  const double s = biggest > 0.0 ? std::ldexp(1.0, exponent) : 1.0;
  const __m512d step = _mm512_set1_pd(s), inverse = _mm512_set1_pd(1.0 / s);  // exact: a power of two
  __m512d error = _mm512_setzero_pd();
  for (int64_t k = 0; k < D; k += 8) {
    const __mmask8 mask = D - k >= 8 ? __mmask8(0xff) : __mmask8((1u << (D - k)) - 1);
    const __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mask, wc + k));
    const __m512d q = _mm512_roundscale_pd(_mm512_mul_pd(v, inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    error = _mm512_max_pd(error, _mm512_abs_pd(_mm512_sub_pd(v, _mm512_mul_pd(step, q))));
    _mm_mask_storeu_epi16(qc + k, mask, _mm256_cvtepi32_epi16(_mm512_cvtpd_epi32(q)));
  }
  return {s, _mm512_reduce_max_pd(error)};
}

// acc[r][c] += x_rows[r] . levels[c] over R rows and NC classes, in int32 lanes; the lanes are summed
// later, a tile at a time (transpose_sum). The row tail is read with a mask (no byte past the row);
// the levels' zero padding makes the rest add nothing.
template <int R, int NC>
CSOFTMAX_VNNI_TARGET inline void level_sums_tile(__m512i* partial, int r0, const uint8_t* const* x_rows,
                                                 const int16_t* levels, int64_t D, int64_t Dp) {
  __m512i acc[R][NC];
#pragma GCC unroll 32
  for (int i = 0; i < R * NC; ++i) acc[i / NC][i % NC] = _mm512_setzero_si512();
  for (int64_t d = 0; d < D; d += kStepFeatures) {
    __m512i x[R];
    if (d + kStepFeatures <= D) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        x[r] = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x_rows[r] + d)));
    } else {  // the row tail, masked (a masked load at every step made a one-off C++ loop of this
              // function on the Zen 4 about a quarter slower)
      const __mmask32 mask = (__mmask32{1} << (D - d)) - 1;
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) x[r] = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, x_rows[r] + d));
    }
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) {
      __m512i q = _mm512_load_si512(levels + c * Dp + d);
      asm("" : "+v"(q));  // one load for R products (as simd::keep_in_register), not one load each
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpwssd_epi32(acc[r][c], x[r], q);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < R * NC; ++i) partial[(i % NC) * kLanes + r0 + i / NC] = acc[i / NC][i % NC];
}

// result lane i = the sum of v[i]'s lanes, for 16 vectors: simd::transpose_sum's network, adding int32.
CSOFTMAX_VNNI_TARGET inline __m512i transpose_sum(const __m512i* v) {
  __m512 lanes[kLanes];
  for (int i = 0; i < kLanes; ++i) lanes[i] = _mm512_castsi512_ps(v[i]);
  return _mm512_castps_si512(simd::transpose_reduce(lanes, [](__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }));
}

// sum_k x_k of one row (vpsadbw against zero: eight 64-bit sums of bytes a step).
CSOFTMAX_VNNI_TARGET inline int64_t pixel_sum(const uint8_t* x, int64_t D) {
  __m512i sum = _mm512_setzero_si512();
  int64_t d = 0;
  for (; d + 64 <= D; d += 64)
    sum = _mm512_add_epi64(sum, _mm512_sad_epu8(_mm512_loadu_si512(x + d), _mm512_setzero_si512()));
  if (d < D) {
    const __mmask64 mask = (__mmask64{1} << (D - d)) - 1;
    sum = _mm512_add_epi64(sum, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(mask, x + d), _mm512_setzero_si512()));
  }
  return _mm512_reduce_add_epi64(sum);
}

// sums[c * kLanes + r] = x_rows[r] . levels[c] for the 16 rows of a lane tile and NC classes from c0.
template <int NC>
CSOFTMAX_VNNI_TARGET void class_block_sums(int32_t* sums, const uint8_t* const* x_rows, const VnniWeights& w,
                                           int64_t c0) {
  alignas(64) __m512i partial[NC * kLanes];
  const int16_t* levels = w.levels.data() + c0 * w.padded_features;
  for (int r = 0; r < kLanes; r += kTileRows)
    level_sums_tile<kTileRows, NC>(partial, r, x_rows + r, levels, w.features, w.padded_features);
  for (int c = 0; c < NC; ++c) _mm512_storeu_si512(sums + (c0 + c) * kLanes, transpose_sum(partial + c * kLanes));
}

// The first largest estimate of each of 8 rows, and whether it is proven: its lower bound exceeds
// every other class's upper bound. sums: each class's 8 integer sums, kLanes apart; pixels: the rows'
// sum_k x_k. Branch-free, in float64 lanes; the bounds carry a relative margin of 2^-40 for float64
// rounding (each step rounds by at most 2^-53 of the magnitudes involved).
CSOFTMAX_VNNI_TARGET inline __mmask8 prove_labels(int64_t* labels, const int32_t* sums, const double* pixels,
                                                  const VnniWeights& w, double x_scale) {
  constexpr double kMargin = 0x1p-40;
  const __m512d S = _mm512_loadu_pd(pixels), margin = _mm512_set1_pd(kMargin);
  __m512d best = _mm512_setzero_pd(), best_low = best, best_high = best, rival_high = _mm512_set1_pd(-INFINITY);
  __m256i best_class = _mm256_setzero_si256();
  for (int64_t c = 0; c < w.classes; ++c) {
    const __m512d integer =
        _mm512_cvtepi32_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + c * kLanes)));
    const __m512d product = _mm512_mul_pd(_mm512_set1_pd(x_scale), _mm512_mul_pd(_mm512_set1_pd(w.step[c]), integer));
    const __m512d a = _mm512_add_pd(product, _mm512_set1_pd(w.bias[c]));
    const __m512d rounding =
        _mm512_mul_pd(margin, _mm512_add_pd(_mm512_abs_pd(product), _mm512_set1_pd(std::fabs(w.bias[c]))));
    const double per_pixel = std::fabs(x_scale) * w.error[c] * (1.0 + kMargin);
    const __m512d bound = _mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(per_pixel), S), rounding);
    const __m512d low = _mm512_sub_pd(a, bound), high = _mm512_add_pd(a, bound);
    // c == 0 takes every lane; later classes take the lanes where they are strictly larger
    const __mmask8 larger = c == 0 ? __mmask8{0xff} : _mm512_cmp_pd_mask(a, best, _CMP_GT_OQ);
    if (c > 0) rival_high = _mm512_max_pd(rival_high, _mm512_mask_blend_pd(larger, high, best_high));
    best = _mm512_mask_blend_pd(larger, best, a);
    best_low = _mm512_mask_blend_pd(larger, best_low, low);
    best_high = _mm512_mask_blend_pd(larger, best_high, high);
    best_class = _mm256_mask_blend_epi32(larger, best_class, _mm256_set1_epi32(static_cast<int>(c)));
  }
  _mm512_storeu_si512(labels, _mm512_cvtepi32_epi64(best_class));
  return _mm512_cmp_pd_mask(best_low, rival_high, _CMP_GT_OQ);
}

}  // namespace vnni

// The labels of a lane tile's 16 rows (x_rows; repeat a valid row to fill a short tile). Returns a
// mask of the rows whose label is proven; the others' entries of `labels` are not theirs.
// `sums` is scratch of classes * 16 int32.
CSOFTMAX_VNNI_TARGET inline uint32_t vnni_tile_labels(int64_t* labels, int32_t* sums, const uint8_t* const* x_rows,
                                                     const VnniWeights& w, float x_scale) {
  using namespace vnni;
  for (int64_t c0 = 0; c0 < w.classes; c0 += kTileClasses) {
    const int nc = static_cast<int>(std::min<int64_t>(kTileClasses, w.classes - c0));
    // (the lambda itself uses no VNNI: it only picks the instantiation, which carries the target)
    with_class_tile<kTileClasses>(nc, [&](auto tile) { class_block_sums<decltype(tile)::value>(sums, x_rows, w, c0); });
  }
  double pixels[kLanes];
  for (int r = 0; r < kLanes; ++r) pixels[r] = static_cast<double>(pixel_sum(x_rows[r], w.features));
  const uint32_t low = prove_labels(labels, sums, pixels, w, x_scale);
  const uint32_t high = prove_labels(labels + 8, sums + 8, pixels + 8, w, x_scale);
  return low | high << 8;
}

#undef CSOFTMAX_VNNI_TARGET
#endif

// Rounding W to levels costs about what the float32 forward of this many rows saves; below it the
// float32 forward is used. `CSOFTMAX_VNNI=1` and `0 python benchmarks/bench_variant.py --measure
// predict --repeats 7` on the AMD EPYC Zen 4, three alternating runs, the first n test images with the
// recipe's weights, one thread: n = 128: 29-40 us against 33-38; 512: 75-84 against 95-102.
inline constexpr int64_t kVnniMinRows = 128;

// Fills `out` from class-major weights for the labels of rows of T, or returns nullptr where the
// integer forward cannot take them: rows not uint8, VNNI not usable here, non-finite weights or bias,
// or rows too long for enough levels.
template <typename T>
inline const VnniWeights* vnni_weights_for(VnniWeights& out, const ClassMajorWeights& w) {
#if CSOFTMAX_VNNI_COMPILED
  if (!std::is_same_v<T, uint8_t> || !vnni_support().usable) return nullptr;
  const int64_t C = w.classes, D = w.features;
  const int64_t Dp = (D + vnni::kStepFeatures - 1) / vnni::kStepFeatures * vnni::kStepFeatures;
  const int cap = vnni::level_limit(Dp);
  if (cap < vnni::kMinLevels) return nullptr;
  out.levels.assign(static_cast<size_t>(C * Dp), 0);
  out.step.resize(C);
  out.error.resize(C);
  out.bias.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    const vnni::ClassLevels rounded = vnni::round_class(w.wt + c * D, D, cap, out.levels.data() + c * Dp);
    if (rounded.step == 0.0 || !std::isfinite(w.bias[c])) return nullptr;
    out.step[c] = rounded.step;
    out.error[c] = rounded.error;
    out.bias[c] = w.bias[c];
  }
  out.classes = C;
  out.features = D;
  out.padded_features = Dp;
  return &out;
#else
  (void)out;
  (void)w;
  return nullptr;
#endif
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
