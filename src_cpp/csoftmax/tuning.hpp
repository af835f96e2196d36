// Every machine-dependent constant of the kernels, in one place, with the invariants the code relies
// on checked at compile time (at run time for the derived ones).
//
// Register tiles follow from the build's vector width and register file (fixed at compile time). The
// cache blocks are derived at run time from the caches the machine reports (Tuning, at the end, with
// the rule beside each); the other thresholds were measured on the machines named beside them, or are
// promises about memory, and say which. The project's machines
// differ (DESIGN.md: AMD EPYC Zen 5 with 48 KB L1d / 1 MB L2 per core; an Intel Xeon with 2 MB L2
// per core, listed in DESIGN.md as family 6 model 207, whose VMs have reported model 167 to lscpu when
// the README's Intel tables were measured): a value measured on one is a starting point on the other,
// to be re-measured with benchmarks/ before it is changed.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "csoftmax/machine.hpp"
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
// x kClassTile classes (the gradient update of kernels/logistic_pass.hpp; the fused step's dW has its
// own tile, below). With one vector load per cycle, 4 x 5 keeps the FMA units ahead of the loads
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
// The fused step's dW (kernels/linear_cross_entropy.hpp): kGradChunkTile vectors along D x
// kGradClassTile classes of accumulators; each row widens its kGradChunkTile vectors of X once for
// every kGradClassTile classes. With AVX-512 on Intel, the widening of uint8 (vpmovzxbd, vcvtdq2ps)
// issues on the two ports that also run the 512-bit FMAs, so 2 x 10 (2 widenings per 20 FMAs, where
// 4 x 5 takes 4) is faster. The chapter's step back to back on the Intel Xeon
// (benchmarks/bench_variant.py --measure steady, a 4 x 5 build against this one, three alternating
// runs): one thread 60.0-60.2 us with 4 x 5, 56.1-61.3 with 2 x 10; two threads 36.1-38.6 against
// 35.3-36.1. With AVX2 the FMAs run on other ports than the widening, and the 16 registers leave 5
// classes. (Not measured on Zen 5.)
// On a CPU with AMX, the dW of uint8 rows runs on tiles (kernels/amx_grad_weight.hpp), not this tile.
#if defined(__AVX512F__)
inline constexpr int kGradChunkTile = 2;  // 2 x 10 = 20 accumulators of 32 zmm registers
inline constexpr int kGradClassTile = 10;
#else
inline constexpr int kGradChunkTile = 2;
inline constexpr int kGradClassTile = 5;
#endif
static_assert(kGradClassTile >= 1 && kGradClassTile <= 10, "with_class_tile dispatches 1 to 10 classes");
static_assert(kGradChunkTile * kGradClassTile + kGradChunkTile + 1 <= kVectorRegisters,
              "dW tile: accumulators, row vectors and a broadcast fit the register file");
static_assert(kClassTile >= 1 && kClassTile <= 10, "with_class_tile dispatches 1 to 10 classes");
static_assert(simd::kWidth % kRowTile == 0, "a lane tile (kWidth rows) is a whole number of register tiles");
static_assert(kRowTile * kClassTile + kRowTile + 1 <= kVectorRegisters,
              "forward tile: accumulators, row vectors and a weight vector fit the register file");
static_assert(kChunkTile * kClassTile + kChunkTile + 1 <= kVectorRegisters,
              "backward tile: accumulators, row vectors and a broadcast fit the register file");

// The fused step's dW contribution is taken over a group of up to kGradientGroupRows rows at once
// (kernels/linear_cross_entropy.hpp): each accumulator stays in a register over the whole group, so a
// block's partial dW is stored once per group instead of loaded and stored once per lane tile. 128
// rows is a block at the chapter's shape. On the Intel Xeon (2 vCPUs, AVX-512), the chapter's step
// back to back (benchmarks/bench_variant.py --measure steady, the commit before the groups against
// a build with them and the 4 x 5 dW tile, three alternating runs): two threads 46.6-48.3 us with a
// store per 16-row tile, 36.1-38.6 with one per block; one thread 62.3-65.0 against 60.0-60.2. The
// group's gradients (C x rows floats) are held to kGradientGroupBytes, and its rows, read again from
// cache for the dW pass, to a quarter of L2.
inline constexpr int64_t kGradientGroupRows = 128;
inline constexpr int64_t kGradientGroupBytes = int64_t{64} << 10;
static_assert(kGradientGroupRows % simd::kWidth == 0, "a group is whole lane tiles");

// Lane tiles of gathered rows the fused step asks for ahead of the one it computes
// (kernels/linear_cross_entropy.hpp): gathered rows are scattered over memory, where the hardware
// prefetchers cannot follow. With the forward and dW on AMX tiles (kernels/amx_logits.hpp), a tile
// takes about 1 us, too little to bring in the next tile's 12.5 KB from memory: on the Intel Xeon
// (benchmarks/bench_step_phases.py, the shuffled epoch, one thread, batch 256 / 128), 74.8 / 41.4 us
// a step asking 1 tile ahead, 62.7 / 32.5 asking 2, 59.4 / 31.6 asking 3 (one-off builds in turn;
// with the rows cached, the three were within 2 us). Those prefetches went into L1; they now go into
// L2 (kernels/batch_rows.hpp), measured on the AMD EPYC Zen 4. On the AMD EPYC Zen 5 (the shuffled
// epoch of benchmarks/epoch_breakdown.py, five rounds of a one-off build that read the distance from
// the environment), 1, 2 and 3 tiles ahead were within 4% of each other, inside the host's noise,
// and 8 ahead was slower.
inline constexpr int64_t kRowPrefetchTiles = 3;

// Independent accumulators of dX = G . W per row (kernels/linear_tiles.hpp): 4 hide the FMA latency.
inline constexpr int kGradInputChains = 4;

// Work partition of the fused step (kernels/linear_cross_entropy.hpp, plan_blocks): at least
// kMinRowsPerBlock rows a block (128: the chapter's batch of 256 is one block per core of the 2-core
// machines, so the reduction moves only the other core's half of one partial), at most kMaxBlocks
// blocks, and all blocks' partial [dW | db] within kPartialBytes. Neither is a cache size, so they
// stay constants: the rows a block needs are set by the cost of reducing its partial (C D adds)
// against its work (2 x rows x C D FMAs), whatever the caches; the partials' cap is a memory promise.
// (A block's partial is hot in L1d/L2 whatever its row count: at the chapter's shape it is 31 KB.)
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
// independent chains, and SSE2's separate multiply and add (3 + 3 cycles on Zen 4, up to 4 + 3 on
// Intel) 12 to 14. Every chain and the two constants must stay in registers: with 16 chains in the
// 16 registers of AVX2 and SSE2, GCC kept three chains on the stack, each a store and a load per
// round, and the probe read 65 GFLOP/s on a Zen 4 core that ran the avx2 chapter step at 90 (the
// avx2 variant's step "138% of its peak", benchmarks/bench.py). 16 chains with AVX-512's 32 zmm,
// 14 with 16 registers (checked in the disassembly: no stack access in the loop).
inline constexpr int kPeakAccumulators = kVectorRegisters >= 32 ? 16 : kVectorRegisters - 2;
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

// The cache blocks (kBlockK, kBlockN, kBlockM of BLIS) are derived from the running machine's caches:
// Tuning below.

}  // namespace csoftmax::CSOFTMAX_VARIANT::gemm

namespace csoftmax::CSOFTMAX_VARIANT::large_vocab {

// Classes per logits / dW tile. On AMX tiles a tile of W is packed for both products that read it
// (kernels/amx_gemm.hpp, 2 x 128 x D x 6 bytes: 1.2 MB at D = 768), and with 128 classes that and the
// chunk's packed X stay in L2 together: one step at B = 1024, D = 768, C = 50257 on the Intel Xeon
// (one-off timings, two runs each) took 0.85-0.87 s with 256 classes, 0.78-0.83 s with 128 and
// 0.80-0.83 s with 64; the FMA path's stayed within 0.96-1.09 s at all three.
inline constexpr int64_t kClassBlock = 128;
// Classes per work item of the dW product (phase 3, FMA sgemm). They are that product's rows in a
// class-major W (and its columns in a feature-major one), so a whole number of micro-tiles: 128
// classes take 10 panels of 14 rows on AVX-512, computing 140 rows for 128. 16 panels: 224 classes
// with AVX-512 (7 x 32 columns), 96 otherwise (6 x 16 or 12 x 8).
inline constexpr int64_t kWeightGradientClasses = 16 * gemm::kMicroRows;
static_assert(kWeightGradientClasses % gemm::kMicroCols == 0, "whole micro-panels as columns, too");
// Class tiles are dealt into this many groups, each with its own running softmax statistics and its
// own partial dX; the groups are combined in order, so the result does not depend on which thread
// ran which group. 4 groups balance 2 threads; each costs a (row_block, D) partial.
inline constexpr int64_t kClassGroups = 4;
// The chunk of logits kept at once: 1/16 of what all B x C logits would take, but at least
// kLogitsFloorBytes and at most kLogitsCapBytes. Each chunk streams W and dW in and out of memory
// once, so larger chunks are faster (on Zen 5, B = 1024, C = 50257, D = 768, one core: 152 GFLOP/s
// with 56 rows, 177 with 112, 190 with 238; B = 4096, C = 32768, D = 1024, two cores: 2.37 s with 140
// rows, 2.12 s with 336). PyTorch's unfused step holds more than twice the full logits, so 1/16 of
// them stays under 5% of its memory; the floor (99 rows' worth at B = 1024, C = 50257, where PyTorch
// takes 449 MiB: 20 MiB with the dX partials, 4.5%; the chunk is 96 rows, whole row units of
// large_vocab::row_unit) is the most that shape allows under that promise.
// Neither bound comes from the caches, on purpose: a chunk buys fewer passes of W and dW through
// memory (12 C D bytes a chunk against 6 rows C D flops, a ratio of bandwidth to compute that no
// cache size tells), and its logits may outgrow L3 at no loss (the 336 rows above are 44 MB, past
// Zen 5's 32 MiB L3, and were the faster). Both are promises about memory, the same on every machine:
// the floor keeps the 5% at that shape, the cap bounds what is held beyond inputs and outputs
// whatever B is.
inline constexpr int64_t kLogitsFloorBytes = int64_t{19} << 20;
inline constexpr int64_t kLogitsCapBytes = int64_t{48} << 20;
// The most rows a chunk has is Tuning::max_row_block (derived from L2, below).
inline constexpr int64_t kMinRowBlock = gemm::kMicroRows * 4;  // 56: the cap gives way past C ~ 220000
// Rows of the logits chunk a multiple of this many floats (2 KB) would all fall in the same cache
// sets when a transposing pack reads them together.
inline constexpr int64_t kLogitsStrideAlias = 512;
static_assert(kLogitsFloorBytes <= kLogitsCapBytes, "std::clamp needs floor <= cap");
static_assert(kMinRowBlock % gemm::kMicroRows == 0,
              "a chunk of rows is whole micro-panels (a partial panel computes all kMicroRows rows)");
static_assert(kClassGroups >= 1 && kClassBlock % simd::kWidth == 0, "class tiles are whole vectors");

}  // namespace csoftmax::CSOFTMAX_VARIANT::large_vocab

namespace csoftmax::CSOFTMAX_VARIANT {

// --- derived from the running machine (csoftmax/machine.hpp) -------------------------------------
// The cache blocks of the sgemm (kernels/gemm.hpp, BLIS's kc, nc, mc) and the most rows of a
// large-vocabulary chunk. derive_tuning is a pure function of the facts (tested on both project CPUs
// and on absurd facts through _core.derive_tuning); tuning() is the running machine's, computed once.
// All are multiples of the register tile, so the packed-A offsets and the packing buffers hold.
struct Tuning {
  int64_t block_k;        // depth of a packed micro-panel
  int64_t block_n;        // columns of a packed B block (whole kMicroCols micro-panels)
  int64_t block_m;        // rows of a packed A block (whole kMicroRows micro-panels)
  int64_t max_row_block;  // the most rows of a large-vocabulary chunk (whole micro-panels)
};

namespace tuning_rules {
inline constexpr int64_t kFloat = int64_t{sizeof(float)};
// Packing transposes 16 x 16 blocks along k; deeper than 512 steps the C tile's load and store are
// already < 1% of a micro-kernel call, shallower than 64 they are not.
inline constexpr int64_t kStep = 16, kMinBlockK = 64, kMaxBlockK = 512;
// Bounds the packing buffers of each thread (block_k x (block_m + block_n) floats, <= 11 MiB) on a
// machine that reports a huge L2.
inline constexpr int64_t kMaxBlockN = 128 * gemm::kMicroCols, kMaxBlockM = 96 * gemm::kMicroRows;

inline int64_t round_down(int64_t n, int64_t multiple) { return n / multiple * multiple; }
}  // namespace tuning_rules

// Throws if a Tuning breaks what the kernels rely on (the static_asserts of the compile-time blocks).
inline void check_tuning(const Tuning& t) {
  const bool ok = t.block_k >= 1 && t.block_n >= gemm::kMicroCols && t.block_m >= gemm::kMicroRows &&
                  t.block_n % gemm::kMicroCols == 0 &&  // an N block is whole micro-panels
                  t.block_m % gemm::kMicroRows == 0 &&  // the packed-A offsets rely on whole micro-panels
                  t.max_row_block % gemm::kMicroRows == 0 && t.max_row_block >= large_vocab::kMinRowBlock;
  if (!ok) throw std::logic_error("csoftmax: derived cache blocks break the register tile's invariants");
}

inline Tuning derive_tuning(const MachineFacts& facts) {
  using namespace tuning_rules;
  using gemm::kMicroCols;
  using gemm::kMicroRows;
  const int64_t l1d = facts.l1d.value, l2 = facts.l2.value;
  Tuning t{};
  // k: the A micro-panel (k x kMicroRows), which every B micro-panel of the block reuses, and the B
  // micro-panel (k x kMicroCols) streaming past it fill L1d. On Zen 5 (48 KB) with AVX-512: 256, the
  // 14 KB + 32 KB measured fastest. Whole steps of the 16 x 16 transposes.
  t.block_k = std::clamp(round_down(l1d / (kFloat * (kMicroRows + kMicroCols)), kStep), kMinBlockK, kMaxBlockK);
  // n: the packed B block (k x n) takes half of L2, read once per A micro-panel row of the block; the
  // other half holds the A block and C's lines. Zen 5 (1 MB): 512; the Intel Xeon (2 MB): 1024.
  t.block_n = std::clamp<int64_t>(round_down(l2 / 2 / (kFloat * t.block_k), kMicroCols), kMicroCols, kMaxBlockN);
  // m: the packed A block (m x k), read from L2 one micro-panel at a time, takes a third of L2, so
  // it and the B block (half) stay there together. Zen 5: 336 (as measured); the Intel Xeon: 672.
  // (The Zen 5 measurements of k and m were made with the micro-panels visited in the other order,
  // B outside and A inside, before gemm.hpp walked C along its rows; not re-measured there since.)
  t.block_m = std::clamp(round_down(l2 / 3 / (kFloat * t.block_k), kMicroRows), large_vocab::kMinRowBlock,
                         kMaxBlockM);
  // A large-vocabulary chunk of more rows than one A block splits every logits GEMM into M blocks and
  // gains nothing (on Zen 5, 336 rows, no GEMM got faster past it).
  t.max_row_block = t.block_m;
  check_tuning(t);
  return t;
}

// The running machine's, derived at first use (thread-safe: a function-local static).
inline const Tuning& tuning() {
  static const Tuning t = derive_tuning(machine_facts());
  return t;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
