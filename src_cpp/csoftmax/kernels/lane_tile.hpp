// One tile of simd::kWidth rows, held class-major with rows in lanes: zt[c * kWidth + r].
//
// The forward leaves each row's logits in its own lane, so the softmax, the loss, the argmax and the
// gradient of a whole tile are plain vector operations over classes, with no horizontal work per row.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "csoftmax/kernels/amx_logits.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/weights.hpp"
#include "csoftmax/kernels/linear_tiles.hpp"
#include "csoftmax/simd/exp_log.hpp"
#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {


// Labels and argmax indices travel as float32 lanes, exact for class indices up to 2^24: the
// kernels built on lane tiles (the single-pass step, the forward pass) take at most this many classes.
inline constexpr int64_t kMaxLaneClasses = int64_t{1} << 24;

// Scratch for one tile's forward: partial sums of a class block, before their reduction.
inline constexpr int64_t kPartialVectors = kClassTile * simd::kWidth;

// zt[c * kWidth + r] = x_scale * <x_rows[r], wt[c]> + bias[c]     for r < kWidth, c < C.
// x_rows: kWidth row pointers (repeat a valid row to fill a short tile); partial: kPartialVectors.
// With w.amx set (uint8 rows), the tiles compute it (kernels/amx_logits.hpp), in a thread holding
// an AmxTileScope.
template <typename T>
inline void lane_logits(float* zt, const T* const* x_rows, const ClassMajorWeights& w, float x_scale,
                        simd::vfloat* partial) {
#if CSOFTMAX_AMX_COMPILED
  static_assert(simd::kWidth == amx::kTileRows, "an AMX tile's rows are a lane tile");
  if constexpr (std::is_same_v<T, uint8_t>)
    if (w.amx) return amx_lane_logits(zt, x_rows, *w.amx, w.bias, x_scale);
#endif
  const int64_t C = w.classes, D = w.features;
  for (int64_t c0 = 0; c0 < C; c0 += kClassTile) {
    const int nc = static_cast<int>(std::min<int64_t>(kClassTile, C - c0));
    with_class_tile(nc, [&](auto tile) {
      constexpr int NC = decltype(tile)::value;
      for (int r = 0; r < simd::kWidth; r += kRowTile)
        logits_tile<T, kRowTile, NC>(partial, r, x_rows + r, w.wt + c0 * D, D);
    });
    for (int c = 0; c < nc; ++c)
      simd::store(zt + (c0 + c) * simd::kWidth, simd::transpose_sum(partial + c * simd::kWidth) * simd::broadcast(x_scale) +
                                                    simd::broadcast(w.bias[c0 + c]));
  }
}

// Each lane's first largest logit (as numpy.argmax), as a float class index; `max` gets the value.
inline simd::vfloat lane_argmax(const float* zt, int64_t C, simd::vfloat& max) {
  max = simd::load(zt);
  simd::vfloat arg = simd::zero();
  for (int64_t c = 1; c < C; ++c) {
    const simd::vfloat z = simd::load(zt + c * simd::kWidth);
    const auto greater = z > max;
    max = greater ? z : max;
    arg = greater ? simd::broadcast(static_cast<float>(c)) : arg;
  }
  return arg;
}

struct LaneLoss {
  simd::vfloat loss;     // (max - z[label]) + log sum exp(z - max): never the log of a probability
  simd::vfloat correct;  // 1 where argmax == label and no logit is NaN
};

// The cross-entropy of a tile and its gradient with respect to the logits, in place:
//   G = (softmax(z) - onehot(label)) * grad_scale;   db_lanes[c] += G[c];   zt <- G * x_scale
// (x_scale is folded in for dW = G^T (x_scale X) and dX = x_scale G W). Lanes >= valid get a zero
// gradient, loss and count. labels holds each lane's label as a float.
inline LaneLoss cross_entropy_grad_lanes(float* zt, int64_t C, simd::vfloat labels, int valid, float grad_scale,
                                         float x_scale, float* db_lanes) {
  const int W = simd::kWidth;
  simd::vfloat max;
  const simd::vfloat arg = lane_argmax(zt, C, max);
  simd::vfloat sum = simd::zero(), z_label = simd::zero();
  simd::vint nan = {};  // lanes with a NaN logit: never a correct prediction, whatever argmax says
  for (int64_t c = 0; c < C; ++c) {
    const simd::vfloat z = simd::load(zt + c * W);
    nan |= z != z;
    z_label = labels == simd::broadcast(static_cast<float>(c)) ? z : z_label;
    const simd::vfloat e = simd::exp(z - max);
    simd::store(zt + c * W, e);
    sum += e;
  }
  const auto in_tile = simd::lane_index() < simd::broadcast(static_cast<float>(valid));
  const simd::vfloat scale = in_tile ? simd::broadcast(grad_scale) / sum : simd::zero();
  const simd::vfloat label_grad = in_tile ? simd::broadcast(grad_scale) : simd::zero();
  const simd::vfloat x_scale_v = simd::broadcast(x_scale);
  for (int64_t c = 0; c < C; ++c) {
    const auto is_label = labels == simd::broadcast(static_cast<float>(c));
    const simd::vfloat g = simd::load(zt + c * W) * scale - (is_label ? label_grad : simd::zero());
    simd::store(db_lanes + c * W, simd::load(db_lanes + c * W) + g);
    simd::store(zt + c * W, g * x_scale_v);
  }
  const simd::vfloat loss = (max - z_label) + simd::log(sum);
  return LaneLoss{in_tile ? loss : simd::zero(),
                  (in_tile & (arg == labels) & ~nan) ? simd::broadcast(1.0f) : simd::zero()};
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
