// Logits of a few rows into a padded scratch buffer: the forward half shared by every kernel.
#pragma once

#include <cstdint>

#include "csoftmax/batch_rows.hpp"
#include "csoftmax/linear_tiles.hpp"
#include "csoftmax/softmax_row.hpp"

namespace csoftmax {

// z[r * padded_classes(C) + c] = x_scale * <x_rows[r], wt[c]> + bias[c] for r < rows, padding = -inf.
template <typename T>
inline void logits_rows(float* z, const T* const* x_rows, int64_t rows, const ClassMajorWeights& w, float x_scale) {
  const int64_t C = w.classes, D = w.features, ld = padded_classes(C);
  for (int64_t c0 = 0; c0 < C; c0 += kClassTile) {
    const int nc = static_cast<int>(C - c0 < kClassTile ? C - c0 : kClassTile);
    with_class_tile(nc, [&](auto tile) {
      constexpr int NC = decltype(tile)::value;
      int64_t r = 0;
      for (; r + kRowTile <= rows; r += kRowTile)
        logits_tile<T, kRowTile, NC>(z + r * ld + c0, ld, x_rows + r, w.wt + c0 * D, w.bias + c0, D, x_scale);
      for (; r < rows; ++r) logits_tile<T, 1, NC>(z + r * ld + c0, ld, x_rows + r, w.wt + c0 * D, w.bias + c0, D, x_scale);
    });
  }
  for (int64_t r = 0; r < rows; ++r) fill_padding(z + r * ld, C);
}

}  // namespace csoftmax
