// tanh of float vectors, for the logit soft cap (softcap * tanh(z / softcap), Gemma 2).
#pragma once

#include "csoftmax/variant.hpp"
#include "csoftmax/simd/exp_log.hpp"
#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::simd {

// tanh(x) in float32, within a few ulp. For |x| >= 0.15: sign(x) (1 - e) / (1 + e) with
// e = exp(-2|x|) <= 1, which never overflows (e underflows to 0 past |x| ~ 44 and tanh is +-1); below,
// where 1 - e would cancel, the Taylor series to x^7 (the next term is below 1e-9 relative there).
// NaN in, NaN out.
inline vfloat tanh(vfloat x) {
  const vfloat magnitude = x < zero() ? -x : x;
  const vfloat e = exp(broadcast(-2.0f) * magnitude);
  const vfloat large = (broadcast(1.0f) - e) / (broadcast(1.0f) + e);
  const vfloat x2 = x * x;
  vfloat series = broadcast(-17.0f / 315.0f);
  series = series * x2 + broadcast(2.0f / 15.0f);
  series = series * x2 + broadcast(-1.0f / 3.0f);
  const vfloat small = x + x * x2 * series;
  const vfloat signed_large = x < zero() ? -large : large;
  return magnitude < broadcast(0.15f) ? small : signed_large;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::simd
