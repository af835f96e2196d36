// Softmax, log-softmax, log-sum-exp and cross-entropy of rows of logits, vectorized over classes:
// the outputs of the forward pass, row by row, and softmax_rows over logits the caller has.
//
// A row lives in a padded buffer: `classes` valid logits followed by -inf up to a whole number of
// vectors, so every loop runs on full vectors and the padding contributes exp(-inf) = 0.
#pragma once

#include "csoftmax/variant.hpp"

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "csoftmax/parallel/threads.hpp"
#include "csoftmax/simd/exp_log.hpp"
#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

inline int64_t padded_classes(int64_t classes) {
  return (classes + simd::kWidth - 1) / simd::kWidth * simd::kWidth;
}

inline void fill_padding(float* row, int64_t classes) {
  for (int64_t c = classes; c < padded_classes(classes); ++c) row[c] = -std::numeric_limits<float>::infinity();
}

inline float row_max(const float* row, int64_t classes) {
  simd::vfloat m = simd::broadcast(-std::numeric_limits<float>::infinity());
  for (int64_t c = 0; c < classes; c += simd::kWidth) m = simd::vmax(m, simd::load(row + c));
  return simd::hmax(m);
}

// Overwrites the row with exp(z - shift) and returns their sum. The shift is the row's max, so no
// unshifted logit is ever exponentiated and the sum is at least 1.
inline float exp_shifted_inplace(float* row, int64_t classes, float shift) {
  simd::vfloat sum = simd::zero();
  const simd::vfloat s = simd::broadcast(shift);
  for (int64_t c = 0; c < classes; c += simd::kWidth) {
    simd::vfloat e = simd::exp(simd::load(row + c) - s);
    simd::store(row + c, e);
    sum += e;
  }
  return simd::hsum(sum);
}

// sum_c exp(z_c - shift), leaving the row as it was.
inline float sum_exp_shifted(const float* row, int64_t classes, float shift) {
  simd::vfloat sum = simd::zero();
  const simd::vfloat s = simd::broadcast(shift);
  for (int64_t c = 0; c < classes; c += simd::kWidth) sum += simd::exp(simd::load(row + c) - s);
  return simd::hsum(sum);
}

inline void scale_inplace(float* row, int64_t classes, float factor) {
  const simd::vfloat f = simd::broadcast(factor);
  for (int64_t c = 0; c < classes; c += simd::kWidth) simd::store(row + c, simd::load(row + c) * f);
}

// The log-sum-exp of a row, kept as max + log(sum exp(z - max)): differences against the max are
// exact in float32, so z - lse is formed as (z - max) - log_sum without cancelling large terms.
struct LogSumExp {
  float max;
  float log_sum;
};

inline LogSumExp logsumexp(const float* row, int64_t classes) {
  const float m = row_max(row, classes);
  return LogSumExp{m, std::log(sum_exp_shifted(row, classes, m))};
}

// row <- softmax(row), padding included (it becomes 0).
inline void softmax_inplace(float* row, int64_t classes) {
  const float sum = exp_shifted_inplace(row, classes, row_max(row, classes));
  scale_inplace(row, classes, 1.0f / sum);
}

// What a forward pass produces for each row of logits.
enum class RowOutput { kProbabilities, kLogProbabilities, kArgmax, kCrossEntropy };

struct RowSink {
  RowOutput what;
  float* values = nullptr;          // (B, C) probabilities / log-probabilities, or (B) losses
  int64_t* argmax = nullptr;        // (B) for kArgmax
  const int64_t* labels = nullptr;  // (B) for kCrossEntropy
};

// Writes row i's output from its padded logits (the row may be overwritten).
inline void emit_row(float* row, int64_t classes, int64_t i, const RowSink& sink) {
  switch (sink.what) {
    case RowOutput::kLogProbabilities: {  // z - lse: never the log of a probability
      const LogSumExp lse = logsumexp(row, classes);
      float* values = sink.values + i * classes;
      for (int64_t c = 0; c < classes; ++c) values[c] = (row[c] - lse.max) - lse.log_sum;
      break;
    }
    case RowOutput::kProbabilities:
      softmax_inplace(row, classes);
      std::copy(row, row + classes, sink.values + i * classes);
      break;
    case RowOutput::kArgmax:  // linear_forward takes argmax from the lane tile, never from a row
      break;
    case RowOutput::kCrossEntropy: {  // sink.values holds one loss per row
      const LogSumExp lse = logsumexp(row, classes);
      sink.values[i] = (lse.max - row[sink.labels[i]]) + lse.log_sum;
      break;
    }
  }
}

// Probabilities, log-probabilities or per-row losses of logits the caller already has: z is (B, C)
// row-major (argmax comes from linear_forward, which has the logits in lanes).
inline void softmax_rows(const float* z, int64_t batch, int64_t classes, const RowSink& sink, int threads) {
  const int64_t ld = padded_classes(classes);
#pragma omp parallel num_threads(threads) if (threads > 1 && batch * classes > kMinParallelSoftmaxElements)
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

}  // namespace csoftmax::CSOFTMAX_VARIANT
