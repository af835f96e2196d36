// Softmax, log-softmax, log-sum-exp and cross-entropy of one row of logits, vectorized over classes:
// the outputs of the forward pass, row by row.
//
// A row lives in a padded buffer: `classes` valid logits followed by -inf up to a whole number of
// vectors, so every loop runs on full vectors and the padding contributes exp(-inf) = 0.
#pragma once

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>

#include "csoftmax/simd.hpp"

namespace csoftmax {

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

// First index of the largest logit, as numpy.argmax.
inline int64_t row_argmax(const float* row, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (row[c] > row[best]) best = c;
  return best;
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
enum class RowOutput { kLogits, kProbabilities, kLogProbabilities, kArgmax, kCrossEntropy };

struct RowSink {
  RowOutput what;
  float* values = nullptr;          // (B, C) logits / probabilities / log-probabilities, or (B) losses
  int64_t* argmax = nullptr;        // (B) for kArgmax
  const int64_t* labels = nullptr;  // (B) for kCrossEntropy
};

// Writes row i's output from its padded logits (the row may be overwritten).
inline void emit_row(float* row, int64_t classes, int64_t i, const RowSink& sink) {
  const bool need_lse = sink.what == RowOutput::kLogProbabilities || sink.what == RowOutput::kCrossEntropy;
  const LogSumExp lse = need_lse ? logsumexp(row, classes) : LogSumExp{0.0f, 0.0f};
  float* values = sink.values + i * classes;
  switch (sink.what) {
    case RowOutput::kLogits:
      std::copy(row, row + classes, values);
      break;
    case RowOutput::kLogProbabilities:  // z - lse: never the log of a probability
      for (int64_t c = 0; c < classes; ++c) values[c] = (row[c] - lse.max) - lse.log_sum;
      break;
    case RowOutput::kProbabilities:
      softmax_inplace(row, classes);
      std::copy(row, row + classes, values);
      break;
    case RowOutput::kArgmax:
      sink.argmax[i] = row_argmax(row, classes);
      break;
    case RowOutput::kCrossEntropy:
      sink.values[i] = (lse.max - row[sink.labels[i]]) + lse.log_sum;
      break;
  }
}

}  // namespace csoftmax
