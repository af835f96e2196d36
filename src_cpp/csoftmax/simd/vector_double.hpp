// The float64 side of the SIMD vocabulary: a double vector of the same register width as simd::vfloat
// (kDoubleWidth = kWidth / 2 lanes), for kernels that promise float64 results.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>
#include <cstring>

#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::simd {

inline constexpr int kDoubleWidth = kWidth / 2;
typedef double vdouble __attribute__((vector_size(kDoubleWidth * sizeof(double))));
typedef int64_t vint64 __attribute__((vector_size(kDoubleWidth * sizeof(int64_t))));

inline vdouble load(const double* p) {
  vdouble v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(double* p, vdouble v) { std::memcpy(p, &v, sizeof(v)); }
inline vdouble broadcast(double value) { return vdouble{} + value; }

inline double hsum(vdouble v) {  // halves first, a fixed order
  double buffer[kDoubleWidth];
  store(buffer, v);
  for (int width = kDoubleWidth / 2; width > 0; width /= 2)
    for (int i = 0; i < width; ++i) buffer[i] += buffer[i + width];
  return buffer[0];
}

// result[i] = hsum(v[i]) for kDoubleWidth vectors, bit for bit (the same halves-first tree), in 22
// shuffles and adds on AVX-512 instead of 8 separate reductions through memory.
inline vdouble transpose_sum(const vdouble* v) {
#if defined(__AVX512F__)
  // Level 1, lanes i + 4 (256-bit halves): pairs[k] = [v[2k] lanes 0-3 sums | v[2k+1] lanes 0-3 sums].
  __m512d pairs[4];
  for (int k = 0; k < 4; ++k) {
    const __m512d a = (__m512d)v[2 * k], b = (__m512d)v[2 * k + 1];
    pairs[k] = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Level 2, lanes i + 2: quads[k] = the two partial sums of v[4k .. 4k + 4), 128 bits each.
  __m512d quads[2];
  for (int k = 0; k < 2; ++k) {
    const __m512d a = pairs[2 * k], b = pairs[2 * k + 1];
    quads[k] = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // Level 3, lanes i + 1: sums in the order 0 4 1 5 2 6 3 7, put back in order.
  const __m512d sums = _mm512_add_pd(_mm512_unpacklo_pd(quads[0], quads[1]), _mm512_unpackhi_pd(quads[0], quads[1]));
  return (vdouble)_mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), sums);
#else
  vdouble result;
  for (int i = 0; i < kDoubleWidth; ++i) result[i] = hsum(v[i]);
  return result;
#endif
}

// exp(x) in float64, within ~2 ulp, for the shifted logits x <= 0 of a softmax (correct up to x = 709). x = n ln2 + r with |r| <= ln2 / 2, and e^r by its Taylor series to r^13, whose
// truncation error (0.35^14 / 14! ~ 4e-18) is below half an ulp; no division. Below -708.39 the true
// result is subnormal or zero and 0 is returned (-inf gives 0: padding lanes add nothing). NaN in,
// NaN out. About 20 vector instructions for kDoubleWidth values where std::exp costs ~20 cycles each.
inline vdouble exp(vdouble x) {
  const vdouble lowest = broadcast(-708.39), highest = broadcast(709.0);
  vdouble clamped = x < lowest ? lowest : x;
  clamped = clamped > highest ? highest : clamped;
  // n = round(x / ln 2) by adding 1.5 * 2^52: the sum's low mantissa bits are then n itself.
  const vdouble round_magic = broadcast(6755399441055744.0);
  const vdouble shifted = clamped * broadcast(1.4426950408889634) + round_magic;
  const vdouble n = shifted - round_magic;
  // r = x - n ln2, with ln2 split in two (fdlibm's: the high part ends in 21 zero bits, so n * high is exact).
  vdouble r = clamped - n * broadcast(0.693147180369123816490);
  r = r - n * broadcast(1.90821492927058770002e-10);
  vdouble p = broadcast(1.0 / 6227020800.0);  // 1/13!
  p = p * r + broadcast(1.0 / 479001600.0);
  p = p * r + broadcast(1.0 / 39916800.0);
  p = p * r + broadcast(1.0 / 3628800.0);
  p = p * r + broadcast(1.0 / 362880.0);
  p = p * r + broadcast(1.0 / 40320.0);
  p = p * r + broadcast(1.0 / 5040.0);
  p = p * r + broadcast(1.0 / 720.0);
  p = p * r + broadcast(1.0 / 120.0);
  p = p * r + broadcast(1.0 / 24.0);
  p = p * r + broadcast(1.0 / 6.0);
  p = p * r + broadcast(0.5);
  p = p * r + broadcast(1.0);
  p = p * r + broadcast(1.0);
  vint64 bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  vint64 n_bits;  // bits(shifted) - bits(round_magic) = n; 2^n = its biased exponent in place
  const vint64 magic_bits = vint64{} + int64_t{0x4338000000000000};
  n_bits = ((bits - magic_bits) + 1023) << 52;
  vdouble two_to_n;
  std::memcpy(&two_to_n, &n_bits, sizeof(two_to_n));
  const vdouble result = p * two_to_n;
  const vdouble zero{};
  return x < lowest ? zero : (x != x ? x : result);
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::simd
