// A batch as the kernels see it: rows of X, and their labels, optionally gathered by an index array.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>

#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

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
  // Into L2 (prefetcht1), not L1: a lane tile's rows are ~200 lines asked for at once, and a
  // prefetch into L1 holds one of L1's few miss buffers until its line arrives, so a burst of them
  // stalls the loads of the tile being computed. L2 tracks more misses, and a row read from L2 costs
  // the forward little. On the AMD EPYC Zen 4 (benchmarks/bench_step_phases.py, the shuffled epoch,
  // three alternating runs of each build): one thread, batch 256 / 128, 118-122 / 58-61 us a step
  // into L1, 99-103 / 47-49 into L2, against 82-85 / 41-42 with the rows cached.
  void prefetch(int64_t begin, int64_t end, int64_t features) const {
    constexpr int kRead = 0, kIntoL2 = 2;  // __builtin_prefetch's locality 2 is prefetcht1
    const int64_t bytes = features * static_cast<int64_t>(sizeof(T));
    for (int64_t i = begin; i < end; ++i) {
      const char* p = reinterpret_cast<const char*>(row(i));
      for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset, kRead, kIntoL2);
    }
  }

  // Ask for the lane tile kRowPrefetchTiles tiles after the one starting at row `start`, within rows
  // [.., end): called by each tile, this keeps the rows that far ahead of the tile computed.
  void prefetch_tile_ahead(int64_t start, int64_t end, int64_t features) const {
    const int64_t ahead = start + kRowPrefetchTiles * simd::kWidth;
    prefetch(ahead, std::min(end, ahead + simd::kWidth), features);
  }
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
