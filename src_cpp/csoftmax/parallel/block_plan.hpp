// The work partition of the fused step: a batch cut into blocks that depend on its shape only, never
// on the thread count, so that partial sums combined in block order give the same result for any team.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>

#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

struct BlockPlan {
  int64_t blocks;
  int64_t rows_per_block;
};

// The work partition of a batch. A function of the shape only, never of the thread count.
inline BlockPlan plan_blocks(int64_t batch, int64_t classes, int64_t features) {
  // kMinRowsPerBlock, kMaxBlocks, kPartialBytes: tuning.hpp
  const int64_t partial_bytes = (classes * features + classes) * int64_t{sizeof(float)};
  int64_t blocks = (batch + kMinRowsPerBlock - 1) / kMinRowsPerBlock;
  blocks = std::min({blocks, kMaxBlocks, std::max<int64_t>(1, kPartialBytes / partial_bytes)});
  blocks = std::max<int64_t>(1, blocks);
  // whole lane tiles per block, so only a batch's last tile can be short
  int64_t rows = (batch + blocks - 1) / blocks;
  rows = (rows + simd::kWidth - 1) / simd::kWidth * simd::kWidth;
  return BlockPlan{(batch + rows - 1) / rows, rows};
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
