// Forward only: probabilities, log-probabilities or predicted labels of x_scale * X . W^T + b.
//
// Rows are independent, so threads share them out freely and results never depend on the count.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/lane_tile.hpp"
#include "csoftmax/kernels/softmax_rows.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

template <typename T>
void linear_forward(const BatchRows<T>& batch, const ClassMajorWeights& w, float x_scale, const RowSink& sink,
                    int threads) {
  constexpr int W = simd::kWidth;
  const int64_t C = w.classes;
  const int64_t tiles = (batch.count + W - 1) / W;
#pragma omp parallel num_threads(threads) if (threads > 1 && worth_threads(batch.count, w.features, w.classes))
  {
    LineAlignedVector<float> z(static_cast<size_t>(C * W));
    std::vector<float> row(static_cast<size_t>(padded_classes(C)));
    std::vector<simd::vfloat> partial(kPartialVectors);
    const T* x_rows[W];
    const AmxTileScope amx_tiles(w.amx != nullptr);
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t start = tile * W;
      const int rows = static_cast<int>(std::min<int64_t>(W, batch.count - start));
      for (int r = 0; r < W; ++r) x_rows[r] = batch.row(start + std::min(r, rows - 1));
      // Rows ahead, as the fused step asks for them, even when they are contiguous: the hardware
      // prefetchers did not keep ahead of a tile that reads its rows side by side. On the AMD EPYC
      // Zen 4, predicting the 10,000 test images (uint8, C = 10; a one-off loop of csoftmax.predict,
      // seven alternating rounds): one thread 2.22-3.18 ms without, 1.84-2.30 with; two threads
      // 0.93-1.19 and 0.93-1.51 (median 1.13 and 1.00). The same loop in a later session of that
      // CPU found no difference (medians 2.54 and 2.62 ms on one thread, 0.92 and 0.94 on two), so
      // what it gains depends on the host; it is kept since it never cost anything measurable.
      batch.prefetch_tile_ahead(start, batch.count, w.features);
      lane_logits(z.data(), x_rows, w, x_scale, partial.data());
      if (sink.what == RowOutput::kArgmax) {
        simd::vfloat max;
        const simd::vfloat arg = lane_argmax(z.data(), C, max);
        for (int r = 0; r < rows; ++r) sink.argmax[start + r] = static_cast<int64_t>(arg[r]);
        continue;
      }
      for (int r = 0; r < rows; ++r) {  // the other outputs, row by row
        for (int64_t c = 0; c < C; ++c) row[c] = z[c * W + r];
        fill_padding(row.data(), C);
        emit_row(row.data(), C, start + r, sink);
      }
    }
  }
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
