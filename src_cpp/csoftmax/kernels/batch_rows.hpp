// A batch as the kernels see it: rows of X, and their labels, optionally gathered by an index array.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>

namespace csoftmax::CSOFTMAX_VARIANT {

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

  // Ask for rows [begin, end) to be brought into cache: gathered rows are scattered over memory, so
  // the hardware prefetcher cannot guess where the next one starts.
  void prefetch(int64_t begin, int64_t end, int64_t features) const {
    const int64_t bytes = features * static_cast<int64_t>(sizeof(T));
    for (int64_t i = begin; i < end; ++i) {
      const char* p = reinterpret_cast<const char*>(row(i));
      for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset);
    }
  }
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
