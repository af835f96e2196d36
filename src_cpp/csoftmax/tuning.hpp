// Every machine-dependent constant of the kernels, in one place, with the invariants the code relies
// on checked at compile time.
//
// Register tiles follow from the build's vector width and register file (fixed at compile time);
// cache blocks and thresholds were measured on the machines named beside them. The project's machines
// differ (DESIGN.md: AMD EPYC Zen 5 with 48 KB L1d / 1 MB L2 per core, Intel Xeon family 6 model 207
// with 2 MB L2): a value measured on one is a starting point on the other, to be re-measured with
// benchmarks/ before it is changed.
#pragma once

#include "csoftmax/variant.hpp"

#include <chrono>
#include <cstdint>

#include "csoftmax/simd/vector.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

// Vector registers of the target: 32 zmm with AVX-512, 16 ymm/xmm otherwise (counted low on NEON).
#if defined(__AVX512F__)
inline constexpr int kVectorRegisters = 32;
#else
inline constexpr int kVectorRegisters = 16;
#endif

// --- the single-pass kernel (kernels/linear_tiles.hpp, lane_tile.hpp) -----------------------------
// Forward: kRowTile rows x kClassTile classes of accumulators; each step loads kRowTile row vectors
// and kClassTile weight vectors for kRowTile * kClassTile FMAs. Backward: kChunkTile vectors along D
// x kClassTile classes. With one vector load per cycle, 4 x 5 keeps the FMA units ahead of the loads
// (chosen on Zen 5 at the chapter's shape, D = 784, C = 10).
#if defined(__AVX512F__)
inline constexpr int kRowTile = 4;  // 4 x 5 = 20 accumulators of 32 zmm registers
inline constexpr int kClassTile = 5;
inline constexpr int kChunkTile = 4;
#else
inline constexpr int kRowTile = 2;  // 2 x 5 = 10 accumulators of 16 ymm/xmm registers
inline constexpr int kClassTile = 5;
inline constexpr int kChunkTile = 2;
#endif
static_assert(kClassTile >= 1 && kClassTile <= 10, "with_class_tile dispatches 1 to 10 classes");
static_assert(simd::kWidth % kRowTile == 0, "a lane tile (kWidth rows) is a whole number of register tiles");
static_assert(kRowTile * kClassTile + kRowTile + 1 <= kVectorRegisters,
              "forward tile: accumulators, row vectors and a weight vector fit the register file");
static_assert(kChunkTile * kClassTile + kChunkTile + 1 <= kVectorRegisters,
              "backward tile: accumulators, row vectors and a broadcast fit the register file");

// Independent accumulators of dX = G . W per row (kernels/linear_tiles.hpp): 4 hide the FMA latency.
inline constexpr int kGradInputChains = 4;

// Work partition of the fused step (kernels/linear_cross_entropy.hpp, plan_blocks): at least
// kMinRowsPerBlock rows a block (128: the chapter's batch of 256 is one block per core of the 2-core
// machines, so the reduction moves only the other core's half of one partial), at most kMaxBlocks
// blocks, and all blocks' partial [dW | db] within kPartialBytes.
inline constexpr int64_t kMinRowsPerBlock = 128;
inline constexpr int64_t kMaxBlocks = 64;
inline constexpr int64_t kPartialBytes = int64_t{64} << 20;
static_assert(kMinRowsPerBlock % simd::kWidth == 0, "a block is whole lane tiles");
// Parameter indices per work item when the partials are summed: whole vectors.
inline constexpr int64_t kReductionChunk = 256;
static_assert(kReductionChunk % simd::kWidth == 0, "reduction chunks are whole vectors");

// Below ~1M multiply-adds a parallel region's start and barriers cost more than they save, and on a
// busy machine far more (parallel/threads.hpp, worth_threads).
inline constexpr int64_t kMinParallelMultiplyAdds = int64_t{1} << 20;
// Row-wise softmax of given logits goes parallel from this many elements.
inline constexpr int64_t kMinParallelSoftmaxElements = 32768;

// The SGD epoch's barrier (parallel/team_barrier.hpp): spin this long, then sleep. Measured on the
// 2-core Zen 5 (fused epoch, 2 threads): 300 pause rounds of spinning made the idle machine's epoch
// 50% slower (threads went to sleep at ordinary waits); 20 us was as fast as 50 us or ~60 us of
// pausing; with a second process training at once, 1000 rounds gave 31 ms per epoch, 4000 rounds
// 47 ms, and libgomp's own barrier 915 ms.
inline constexpr std::chrono::microseconds kBarrierSpinTime{20};

// The FMA peak probe (kernels/peak_probe.hpp): latency 4 cycles x 2 FMA pipes needs at least 8
// independent chains; 16 leave margin (and fit the 32 zmm registers of AVX-512 with the constants).
inline constexpr int kPeakAccumulators = 16;
static_assert(kPeakAccumulators >= 8, "enough FMA chains to fill both pipes");

}  // namespace csoftmax::CSOFTMAX_VARIANT

namespace csoftmax::CSOFTMAX_VARIANT::gemm {

// The register tile of the sgemm (kernels/gemm.hpp): kMicroRows x (kVectors vectors). Accumulators +
// the B vectors + one broadcast fit the register file: 14 x 2 + 2 + 1 = 31 of 32 zmm with AVX-512,
// 6 x 2 + 2 + 1 = 15 of 16 registers otherwise.
#if defined(__AVX512F__)
inline constexpr int kMicroRows = 14;
#else
inline constexpr int kMicroRows = 6;
#endif
inline constexpr int kVectors = 2;
inline constexpr int kMicroCols = kVectors * simd::kWidth;
static_assert(kMicroRows * kVectors + kVectors + 1 <= kVectorRegisters, "the micro-tile fits the register file");

// Cache blocks, measured on Zen 5 (48 KB L1d, 1 MB L2 per core): a packed A micro-panel
// (14 x 256 floats = 14 KB) and a B micro-panel (256 x 32 = 32 KB) share L1; the packed B block
// (256 x 512 = 512 KB) stays in L2.
inline constexpr int64_t kBlockK = 256;
inline constexpr int64_t kBlockN = 512;
inline constexpr int64_t kBlockM = 14 * 24;
static_assert(kBlockM % kMicroRows == 0, "an M block is whole micro-panels (the packed-A offsets rely on it)");
static_assert(kBlockN % kMicroCols == 0, "an N block is whole micro-panels");

}  // namespace csoftmax::CSOFTMAX_VARIANT::gemm

namespace csoftmax::CSOFTMAX_VARIANT::large_vocab {

inline constexpr int64_t kClassBlock = 256;  // classes per logits / dW tile
// Class tiles are dealt into this many groups, each with its own running softmax statistics and its
// own partial dX; the groups are combined in order, so the result does not depend on which thread
// ran which group. 4 groups balance 2 threads; each costs a (row_block, D) partial.
inline constexpr int64_t kClassGroups = 4;
// The chunk of logits kept at once: 1/16 of what all B x C logits would take, but at least
// kLogitsFloorBytes and at most kLogitsCapBytes. Each chunk streams W and dW in and out of memory
// once, so larger chunks are faster (on Zen 5, B = 1024, C = 50257, D = 768, one core: 152 GFLOP/s
// with 56 rows, 177 with 112, 190 with 238; B = 4096, C = 32768, D = 1024, two cores: 2.37 s with 140
// rows, 2.12 s with 336). PyTorch's unfused step holds more than twice the full logits, so 1/16 of
// them stays under 5% of its memory; the floor (98 rows at B = 1024, C = 50257, where PyTorch takes
// 449 MiB) costs at most 5% of PyTorch's memory from B x C >= 2^27 floats on.
inline constexpr int64_t kLogitsFloorBytes = int64_t{19} << 20;
inline constexpr int64_t kLogitsCapBytes = int64_t{48} << 20;
inline constexpr int64_t kMaxRowBlock = gemm::kMicroRows * 24;  // 336 on Zen 5: past this, no GEMM gets faster
inline constexpr int64_t kMinRowBlock = gemm::kMicroRows * 4;   // 56: the cap gives way past C ~ 220000
// Rows of the logits chunk a multiple of this many floats (2 KB) would all fall in the same cache
// sets when a transposing pack reads them together.
inline constexpr int64_t kLogitsStrideAlias = 512;
static_assert(kLogitsFloorBytes <= kLogitsCapBytes, "std::clamp needs floor <= cap");
static_assert(kMinRowBlock <= kMaxRowBlock, "std::clamp needs min <= max");
static_assert(kMinRowBlock % gemm::kMicroRows == 0 && kMaxRowBlock % gemm::kMicroRows == 0,
              "a chunk of rows is whole micro-panels (a partial panel computes all kMicroRows rows)");
static_assert(kClassGroups >= 1 && kClassBlock % simd::kWidth == 0, "class tiles are whole vectors");

}  // namespace csoftmax::CSOFTMAX_VARIANT::large_vocab
