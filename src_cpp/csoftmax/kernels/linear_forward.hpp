// Forward only: probabilities, log-probabilities or predicted labels of x_scale * X . W^T + b.
//
// Rows are independent, so threads share them out freely and results never depend on the count.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/lane_tile.hpp"
#include "csoftmax/kernels/softmax_rows.hpp"
#include "csoftmax/kernels/vnni_argmax.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

// One thread's scratch for the float32 forward of a lane tile.
struct ForwardTile {
  LineAlignedVector<float> z;
  std::vector<simd::vfloat> partial;
  explicit ForwardTile(int64_t classes)
      : z(static_cast<size_t>(classes * simd::kWidth)), partial(kPartialVectors) {}

  // The tile's logits, z[c * kWidth + r] (x_rows: kWidth row pointers).
  template <typename T>
  const float* logits(const T* const* x_rows, const ClassMajorWeights& w, float x_scale) {
    lane_logits(z.data(), x_rows, w, x_scale, partial.data());
    return z.data();
  }

  // The first largest logit's class of each of the tile's rows.
  template <typename T>
  simd::vfloat argmax(const T* const* x_rows, const ClassMajorWeights& w, float x_scale) {
    simd::vfloat max;
    return lane_argmax(logits(x_rows, w, x_scale), w.classes, max);
  }
};

// Points x_rows at the lane tile of rows from `start` (a short tile repeats its last row) and returns
// how many of them are the batch's.
// It also asks for the rows kRowPrefetchTiles tiles ahead, as the fused step does, even when they are
// contiguous: the hardware prefetchers did not keep ahead of a tile that reads its rows side by side.
// On the AMD EPYC Zen 4, predicting the 10,000 test images (uint8, C = 10; a one-off loop of
// csoftmax.predict, seven alternating rounds): one thread 2.22-3.18 ms without, 1.84-2.30 with; two
// threads 0.93-1.19 and 0.93-1.51 (median 1.13 and 1.00). The same loop in a later session of that CPU
// found no difference (medians 2.54 and 2.62 ms on one thread, 0.92 and 0.94 on two), so what it gains
// depends on the host; it is kept since it never cost anything measurable.
template <typename T>
int start_tile(const BatchRows<T>& batch, int64_t start, int64_t features, const T** x_rows) {
  const int rows = static_cast<int>(std::min<int64_t>(simd::kWidth, batch.count - start));
  for (int r = 0; r < simd::kWidth; ++r) x_rows[r] = batch.row(start + std::min(r, rows - 1));
  batch.prefetch_tile_ahead(start, batch.count, features);
  return rows;
}

#if CSOFTMAX_VNNI_COMPILED
// Predicted labels of uint8 rows where the integer forward proves them (kernels/vnni_argmax.hpp). The
// rows it cannot prove (near-ties) are gathered, a lane tile of them at a time, for the float32
// forward, so they cost one float32 tile per kWidth of them wherever they lie; with
// `settle_unproven` false (for the tests: _core.vnni_proven_labels) they get -1 instead.
inline void vnni_linear_argmax(const BatchRows<uint8_t>& batch, const ClassMajorWeights& w, float x_scale,
                               int64_t* labels, int threads, bool settle_unproven = true) {
  constexpr int W = simd::kWidth;
  static_assert(W == vnni::kLanes, "a lane tile is a zmm register of int32 lanes");
  const int64_t tiles = (batch.count + W - 1) / W;
#pragma omp parallel num_threads(threads) if (threads > 1 && worth_threads(batch.count, w.features, w.classes))
  {
    ForwardTile tile_scratch(w.classes);
    std::vector<int32_t> sums(static_cast<size_t>(w.classes * W));
    const uint8_t* x_rows[W];
    int64_t unproven[W], tile_labels[W];
    int unproven_count = 0;
    auto settle = [&] {
      for (int r = 0; r < W; ++r) x_rows[r] = batch.row(unproven[std::min(r, unproven_count - 1)]);
      const simd::vfloat arg = tile_scratch.argmax(x_rows, w, x_scale);
      for (int r = 0; r < unproven_count; ++r) labels[unproven[r]] = static_cast<int64_t>(arg[r]);
      unproven_count = 0;
    };
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t start = tile * W;
      const int rows = start_tile(batch, start, w.features, x_rows);
      const uint32_t proven = vnni_tile_labels(tile_labels, sums.data(), x_rows, *w.vnni, x_scale);
      for (int r = 0; r < rows; ++r) {
        if (proven >> r & 1u) {
          labels[start + r] = tile_labels[r];
          continue;
        }
        if (!settle_unproven) {
          labels[start + r] = -1;
          continue;
        }
        unproven[unproven_count++] = start + r;
        if (unproven_count == W) settle();
      }
    }
    if (unproven_count > 0) settle();
  }
}
#endif

template <typename T>
void linear_forward(const BatchRows<T>& batch, const ClassMajorWeights& w, float x_scale, const RowSink& sink,
                    int threads) {
#if CSOFTMAX_VNNI_COMPILED
  if constexpr (std::is_same_v<T, uint8_t>)
    if (sink.what == RowOutput::kArgmax && w.vnni) return vnni_linear_argmax(batch, w, x_scale, sink.argmax, threads);
#endif
  constexpr int W = simd::kWidth;
  const int64_t C = w.classes;
  const int64_t tiles = (batch.count + W - 1) / W;
#pragma omp parallel num_threads(threads) if (threads > 1 && worth_threads(batch.count, w.features, w.classes))
  {
    ForwardTile tile_scratch(C);
    std::vector<float> row(static_cast<size_t>(padded_classes(C)));
    const T* x_rows[W];
    const AmxTileScope amx_tiles(w.amx != nullptr);
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t start = tile * W;
      const int rows = start_tile(batch, start, w.features, x_rows);
      if (sink.what == RowOutput::kArgmax) {
        const simd::vfloat arg = tile_scratch.argmax(x_rows, w, x_scale);
        for (int r = 0; r < rows; ++r) sink.argmax[start + r] = static_cast<int64_t>(arg[r]);
        continue;
      }
      const float* z = tile_scratch.logits(x_rows, w, x_scale);
      for (int r = 0; r < rows; ++r) {  // the other outputs, row by row
        for (int64_t c = 0; c < C; ++c) row[c] = z[c * W + r];
        fill_padding(row.data(), C);
        emit_row(row.data(), C, start + r, sink);
      }
    }
  }
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
