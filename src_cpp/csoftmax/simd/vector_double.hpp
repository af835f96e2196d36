// The float64 side of the SIMD vocabulary: a double vector of the same register width as simd::vfloat
// (kDoubleWidth = kWidth / 2 lanes), for kernels that promise float64 results.
#pragma once

#include <cstdint>
#include <cstring>

#include "csoftmax/simd/vector.hpp"

namespace csoftmax::simd {

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

}  // namespace csoftmax::simd
