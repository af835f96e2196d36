// The online softmax of the large-vocabulary kernel: one row's logits arrive a class tile at a time,
// and a running max and sum (rescaled as the max moves) give its log-sum-exp without keeping them all.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "csoftmax/kernels/large_vocab_io.hpp"
#include "csoftmax/simd/exp_log.hpp"
#include "csoftmax/simd/tanh.hpp"
#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::large_vocab {

// The first n (< kWidth) floats at p, the other lanes set to `fill`.
inline simd::vfloat load_tail(const float* p, int64_t n, float fill) {
  float buffer[simd::kWidth];
  for (int i = 0; i < simd::kWidth; ++i) buffer[i] = i < n ? p[i] : fill;
  return simd::load(buffer);
}

// The running softmax of one row over the class tiles of one group: max m, sum exp(z - m), the first
// argmax, sum w_c z_c (for label smoothing; w the class weights, or 1), and whether a logit was NaN
// (then no argmax is correct).
struct RunningRow {
  float max;
  float sum;
  float best;
  int64_t argmax;
  double logit_sum;
  bool nan;
};

// One tile of a row: z (n logits, classes c0..c0+n) becomes p = exp(z - m) with m the new running max;
// returns the factor exp(m_old - m) by which everything summed so far (sum, the row of partial dX)
// must be scaled. Only shifted logits are exponentiated. class_weights: those of the tile's classes,
// or nullptr (all 1).
inline float absorb_tile(RunningRow& r, float* z, int64_t n, int64_t c0, const float* class_weights) {
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t full = n / W * W;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  vfloat vmax = simd::broadcast(neg_inf), vsum = simd::zero();
  simd::vint vnan = {};
  for (int64_t c = 0; c < full; c += W) {
    const vfloat v = simd::load(z + c);
    vmax = simd::vmax(vmax, v);
    vsum += class_weights ? v * simd::load(class_weights + c) : v;
    vnan |= v != v;
  }
  float tile_max = simd::hmax(vmax), tile_sum = simd::hsum(vsum);
  bool nan = false;
  for (int i = 0; i < W; ++i) nan |= vnan[i] != 0;
  for (int64_t c = full; c < n; ++c) {
    tile_max = std::max(tile_max, z[c]);
    tile_sum += class_weights ? z[c] * class_weights[c] : z[c];
    nan |= std::isnan(z[c]);
  }
  r.logit_sum += tile_sum;
  r.nan |= nan;
  if (tile_max > r.best) {  // strictly: the first maximum wins, as numpy.argmax
    int64_t c = 0;
    while (c < n - 1 && !(z[c] == tile_max)) ++c;
    r.best = tile_max;
    r.argmax = c0 + c;
  }
  const float m = std::max(r.max, tile_max);
  const float factor = r.max == m ? 1.0f : std::exp(r.max - m);  // exp(-inf) = 0 on the first tile
  const vfloat shift = simd::broadcast(m);
  vsum = simd::zero();
  for (int64_t c = 0; c < full; c += W) {
    const vfloat e = simd::exp(simd::load(z + c) - shift);
    simd::store(z + c, e);
    vsum += e;
  }
  float sum = simd::hsum(vsum);
  if (full < n) {
    const vfloat e = simd::exp(load_tail(z + full, n - full, neg_inf) - shift);
    simd::store_partial(z + full, e, n - full);
    sum += simd::hsum(e);
  }
  r.sum = r.sum * factor + sum;
  r.max = m;
  return factor;
}

// z (n logits) <- softcap tanh(z / softcap), in place.
inline void cap_logits(float* z, int64_t n, float softcap) {
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t full = n / W * W;
  const vfloat cap = simd::broadcast(softcap), inverse = simd::broadcast(1.0f / softcap);
  for (int64_t c = 0; c < full; c += W) simd::store(z + c, cap * simd::tanh(simd::load(z + c) * inverse));
  if (full < n) simd::store_partial(z + full, cap * simd::tanh(simd::load_partial(z + full, n - full) * inverse), n - full);
}

// d z' / d z = 1 - (z' / softcap)^2 at a capped logit z' (cap_logits), from inverse_cap = 1 / softcap.
inline float cap_slope(float z, float inverse_cap) { return 1.0f - (z * inverse_cap) * (z * inverse_cap); }

// slope[c] = cap_slope(z[c]) for n capped logits.
inline void cap_slopes(const float* z, int64_t n, float softcap, float* slope) {
  const float inverse = 1.0f / softcap;
  for (int64_t c = 0; c < n; ++c) slope[c] = cap_slope(z[c], inverse);
}

// One row of logits (C entries) -> that row of G, in place (see RowGradient):
// scale (exp(z - lse) alpha - gamma w_c - beta [c == label]); class_weights (C) or nullptr (all 1).
// A row with scale 0 (ignored) becomes 0. With a soft cap (softcap != 0), z holds the capped logits
// z' and each G_c is multiplied by d z'_c / d z_c = 1 - (z'_c / softcap)^2.
inline void gradient_row(float* z, int64_t C, int64_t label, float lse, const RowGradient& g,
                         const float* class_weights, float softcap) {
  if (g.scale == 0.0f) {
    std::fill(z, z + C, 0.0f);
    return;
  }
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t full = C / W * W;
  const vfloat shift = simd::broadcast(lse), alpha = simd::broadcast(g.scale * g.alpha);
  const vfloat gamma = simd::broadcast(g.scale * g.gamma);
  const float inverse_cap = softcap != 0.0f ? 1.0f / softcap : 0.0f;
  const vfloat inverse = simd::broadcast(inverse_cap), one = simd::broadcast(1.0f);
  // 1 - (z' / softcap)^2, or 1 without a cap (inverse = 0)
  auto lane_slopes = [&](vfloat v) { return one - (v * inverse) * (v * inverse); };
  auto weight = [&](int64_t c) { return class_weights ? simd::load(class_weights + c) : one; };
  const float label_slope = cap_slope(z[label], inverse_cap);
  for (int64_t c = 0; c < full; c += W) {
    const vfloat v = simd::load(z + c);
    vfloat G = simd::exp(v - shift) * alpha - gamma * weight(c);
    if (softcap != 0.0f) G *= lane_slopes(v);
    simd::store(z + c, G);
  }
  if (full < C) {
    const vfloat w = class_weights ? simd::load_partial(class_weights + full, C - full) : one;
    const vfloat v = load_tail(z + full, C - full, lse);
    vfloat G = simd::exp(v - shift) * alpha - gamma * w;
    if (softcap != 0.0f) G *= lane_slopes(v);
    simd::store_partial(z + full, G, C - full);
  }
  z[label] -= g.scale * g.beta * label_slope;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::large_vocab
