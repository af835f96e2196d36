// Forward only: logits, probabilities, log-probabilities or predicted labels of x_scale * X . W^T + b.
//
// Rows are independent, so threads share them out freely and results never depend on the count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "csoftmax/batch_rows.hpp"
#include "csoftmax/logits_tile_rows.hpp"
#include "csoftmax/softmax_row.hpp"

namespace csoftmax {

template <typename T>
void linear_forward(const BatchRows<T>& batch, const ClassMajorWeights& w, float x_scale, const RowSink& sink,
                    int threads) {
  const int64_t ld = padded_classes(w.classes);
  const int64_t tile_rows = rows_in_l1<T>(w.features);
  const int64_t tiles = (batch.count + tile_rows - 1) / tile_rows;
#pragma omp parallel num_threads(threads) if (threads > 1 && tiles > 1)
  {
    std::vector<float> z(static_cast<size_t>(tile_rows * ld));
    std::vector<const T*> x_rows(static_cast<size_t>(tile_rows));
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t start = tile * tile_rows;
      const int64_t rows = std::min(tile_rows, batch.count - start);
      for (int64_t r = 0; r < rows; ++r) x_rows[r] = batch.row(start + r);
      logits_rows(z.data(), x_rows.data(), rows, w, x_scale);
      for (int64_t r = 0; r < rows; ++r) emit_row(z.data() + r * ld, w.classes, start + r, sink);
    }
  }
}

// The same outputs from logits the caller already has: z is (B, C) row-major.
inline void softmax_rows(const float* z, int64_t batch, int64_t classes, const RowSink& sink, int threads) {
  const int64_t ld = padded_classes(classes);
#pragma omp parallel num_threads(threads) if (threads > 1 && batch * classes > 32768)
  {
    std::vector<float> row(static_cast<size_t>(ld));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      std::copy(z + i * classes, z + (i + 1) * classes, row.data());
      fill_padding(row.data(), classes);
      emit_row(row.data(), classes, i, sink);
    }
  }
}

}  // namespace csoftmax
