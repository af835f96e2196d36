// A batch as the kernels see it: rows of X, and their labels, optionally gathered by an index array.
#pragma once

#include <algorithm>
#include <cstdint>

namespace csoftmax {

// Row i of the batch is X[rows[i]] (and its label labels[rows[i]]) when an index array is given,
// else X[i]. Indices are checked by the caller; kernels trust them.
template <typename T>
struct BatchRows {
  const T* data;
  int64_t stride;       // elements between consecutive rows of X
  const int64_t* rows;  // optional gather indices into X (and labels)
  int64_t count;

  int64_t source(int64_t i) const { return rows ? rows[i] : i; }
  const T* row(int64_t i) const { return data + source(i) * stride; }
};

// Class-major weights: wt is (classes, features), bias is (classes).
struct ClassMajorWeights {
  const float* wt;
  const float* bias;
  int64_t classes;
  int64_t features;
};

// Rows per tile of work that is done while the rows sit in L1: about 16 KB of X.
template <typename T>
inline int64_t rows_in_l1(int64_t features) {
  const int64_t rows = 16384 / std::max<int64_t>(1, features * static_cast<int64_t>(sizeof(T)));
  return std::clamp<int64_t>(rows / 2 * 2, 2, 32);
}

}  // namespace csoftmax
