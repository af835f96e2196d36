// exp and log of float vectors (Cephes' polynomials), for the softmax and the loss.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>
#include <cstring>

#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::simd {

// The same bits as another vector type of the same size (memcpy: no aliasing rules broken).
template <typename To, typename From>
inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To out;
  std::memcpy(&out, &v, sizeof(out));
  return out;
}

// exp(x) in float32, ~1 ulp on the range that matters (Cephes' expf polynomial on a range-reduced
// argument). Only ever called on shifted logits x <= 0; below -87.3 the true result is subnormal or
// zero and 0 is returned. NaN in, NaN out.
inline vfloat exp(vfloat x) {
  const vfloat lowest = broadcast(-87.33654475f);
  const vfloat highest = broadcast(88.37626266f);
  vfloat clamped = x < lowest ? lowest : x;
  clamped = clamped > highest ? highest : clamped;
  // n = round(x / ln 2), by the 1.5 * 2^23 trick (round-to-nearest without a rounding instruction):
  // the sum's low mantissa bits hold n itself, so 2^n is built from them by integer operations,
  // never by converting a float to an integer (undefined for NaN, which may arrive here).
  const vfloat round_magic = broadcast(12582912.0f);
  const vfloat n_plus_magic = clamped * broadcast(1.44269504088896341f) + round_magic;
  const vfloat n = n_plus_magic - round_magic;
  // r = x - n ln2, with ln2 split in two so the product is exact.
  vfloat r = clamped - n * broadcast(0.693359375f);
  r = r - n * broadcast(-2.12194440e-4f);
  vfloat p = broadcast(1.9875691500e-4f);
  p = p * r + broadcast(1.3981999507e-3f);
  p = p * r + broadcast(8.3334519073e-3f);
  p = p * r + broadcast(4.1665795894e-2f);
  p = p * r + broadcast(1.6666665459e-1f);
  p = p * r + broadcast(5.0000001201e-1f);
  p = p * (r * r) + r + broadcast(1.0f);
  // bits(n + magic) = bits(magic) + n for |n| < 2^22; unsigned, so no signed overflow for any input
  const vuint magic_bits = bit_cast<vuint>(round_magic);
  const vuint biased_exponent = bit_cast<vuint>(n_plus_magic) - magic_bits + 127u;
  const vfloat result = p * bit_cast<vfloat>(biased_exponent << 23);
  return x < lowest ? zero() : result;
}

// log(x) in float32 for normal x > 0, ~1 ulp (Cephes' logf). Used on sums of exponentials, which
// are >= 1. NaN and +inf come back unchanged.
inline vfloat log(vfloat x) {
  const vint bits = bit_cast<vint>(x);
  vint exponent = ((bits >> 23) & 0xff) - 127;
  // mantissa in [1, 2), then folded into [sqrt(1/2), sqrt(2)) so the polynomial argument is small
  vfloat m = bit_cast<vfloat>((bits & 0x007fffff) | 0x3f800000);
  const auto big = m > broadcast(1.41421356f);
  m = big ? m * broadcast(0.5f) : m;
  exponent = exponent + (big ? vint{} + 1 : vint{});
  const vfloat e = __builtin_convertvector(exponent, vfloat);
  const vfloat f = m - broadcast(1.0f);
  const vfloat z = f * f;
  vfloat y = broadcast(7.0376836292e-2f);
  y = y * f + broadcast(-1.1514610310e-1f);
  y = y * f + broadcast(1.1676998740e-1f);
  y = y * f + broadcast(-1.2420140846e-1f);
  y = y * f + broadcast(1.4249322787e-1f);
  y = y * f + broadcast(-1.6668057665e-1f);
  y = y * f + broadcast(2.0000714765e-1f);
  y = y * f + broadcast(-2.4999993993e-1f);
  y = y * f + broadcast(3.3333331174e-1f);
  y = y * f * z;
  y = y + e * broadcast(-2.12194440e-4f);
  y = y - broadcast(0.5f) * z;
  const vfloat result = f + y + e * broadcast(0.693359375f);
  const auto passthrough = (x != x) | (x == broadcast(__builtin_inff()));
  return passthrough ? x : result;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::simd
