// The fused minibatch step: logits = x_scale * X . W^T + b, softmax, cross-entropy, and the
// gradients of the loss with respect to W, b (and X when asked), in one pass over X.
//
//   m = max_c z;  lse = m + log sum_c exp(z - m);  loss_i = lse_i - z[i, y_i]
//   G = (exp(z - lse) - onehot(y)) * grad_scale;   dW = G^T . (x_scale X);  db = sum_i G_i;  dX = x_scale G . W
//
// X is read from memory once. A block's rows go through the forward and the softmax a lane tile
// (simd::kWidth rows) at a time, in groups of up to kGradientGroupRows rows (tuning.hpp); then the
// group's dW contribution is taken in one sweep over its rows, read again from cache, with each
// accumulator in a register for the whole group. So a block's partial dW is stored once a group
// rather than loaded and stored once a tile. Rows are added in order either way: the group's size
// never changes a result.
//
// Threads: the batch is cut into blocks that depend on (B, C, D) only. Each block writes its own
// partial [dW | db]; the partials are then summed in block order. So results are bit-identical for
// any thread count.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/amx_grad_weight.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/lane_tile.hpp"
#include "csoftmax/kernels/linear_tiles.hpp"
#include "csoftmax/machine.hpp"
#include "csoftmax/parallel/block_plan.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

// Where a step's gradient goes: class-major grad_wt (C, D) and grad_b (C).
struct GradientSink {
  float* grad_wt;
  float* grad_b;
};

template <typename T>
class FusedLinearCrossEntropy {
 public:
  // Workspace for batches of up to max_batch rows, run by a team of up to max_threads threads (the
  // count the parallel region asks for: OpenMP grants at most that many). With two partial sets, a
  // step can write its partials while the previous step's are still being read.
  FusedLinearCrossEntropy(int64_t max_batch, int64_t classes, int64_t features, int max_threads, int partial_sets = 1)
      : classes_(classes),
        features_(features),
        partial_size_(line_padded_floats(classes * features + classes)),
        max_blocks_(plan_blocks(max_batch, classes, features).blocks),
        group_rows_(gradient_group_rows(classes, features)),
        partials_(static_cast<size_t>(partial_sets * max_blocks_ * partial_size_)),
        block_loss_(static_cast<size_t>(partial_sets * max_blocks_)),
        block_correct_(static_cast<size_t>(partial_sets * max_blocks_)),
        scratch_(static_cast<size_t>(max_threads)) {
    for (auto& s : scratch_) s.resize(classes, group_rows_);
  }

  // One step's gradient over `batch` into `sink`. Call it from every thread of an enclosing parallel
  // region (of at most max_threads threads), or from outside any; it returns after a barrier, with the
  // step's loss sum and correct count added to loss_sum() and correct().
  // `plan` is plan_blocks of this batch; row_loss (B) and grad_x (B, D) are optional outputs.
  void run(const BlockPlan& plan, const BatchRows<T>& batch, const int64_t* labels, const ClassMajorWeights& w,
           float x_scale, float grad_scale, float* row_loss, float* grad_x, const GradientSink& sink) {
    run_blocks(0, plan, batch, labels, w, x_scale, grad_scale, row_loss, grad_x);
#pragma omp barrier
    const int64_t blocks = plan.blocks;
    // Parameter indices are split across threads; the sums do not depend on how.
    constexpr int64_t kChunk = kReductionChunk;
    const int64_t weights = classes_ * features_;
    const int64_t weight_chunks = (weights + kChunk - 1) / kChunk;
    auto store_into = [](float* out) {
      return [out](int64_t i, simd::vfloat sum, int64_t n) { simd::store_partial(out + i, sum, n); };
    };
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk <= weight_chunks; ++chunk) {
      if (chunk < weight_chunks) {
        const int64_t begin = chunk * kChunk;
        sum_blocks(0, blocks, begin, std::min(kChunk, weights - begin), store_into(sink.grad_wt + begin));
      } else {
        sum_blocks(0, blocks, weights, classes_, store_into(sink.grad_b));
        loss_sum_ += block_loss_sum(0, blocks);
        correct_ += block_correct_sum(0, blocks);
      }
    }
  }

  // The blocks of one step, shared out among the threads of the enclosing parallel region (no barrier
  // at the end): block k writes its partial [dW (C, D) | db (C)], loss sum and correct count into set
  // `set`. A thread runs blocks my_items(blocks) of the plan (plan_blocks of this batch).
  void run_blocks(int set, const BlockPlan& plan, const BatchRows<T>& batch, const int64_t* labels,
                  const ClassMajorWeights& w, float x_scale, float grad_scale, float* row_loss, float* grad_x) {
    const ItemRange mine = my_items(plan.blocks);
    const AmxTileScope amx_tiles(w.amx != nullptr && mine.begin < mine.end);
    for (int64_t k = mine.begin; k < mine.end; ++k) {
      const int64_t begin = k * plan.rows_per_block;
      const int64_t end = std::min(batch.count, begin + plan.rows_per_block);
      run_block(set * max_blocks_ + k, begin, end, batch, labels, w, x_scale, grad_scale, row_loss, grad_x);
    }
  }

  // Bring into cache the first kRowPrefetchTiles tiles of the first block this thread will run for
  // `batch` (cut by `plan`): those a block's own prefetching, kRowPrefetchTiles ahead, cannot cover.
  void prefetch_first_tiles(const BlockPlan& plan, const BatchRows<T>& batch) const {
    const ItemRange mine = my_items(plan.blocks);
    if (mine.begin < mine.end) {
      const int64_t begin = mine.begin * plan.rows_per_block;
      batch.prefetch(begin, std::min(batch.count, begin + kRowPrefetchTiles * simd::kWidth), features_);
    }
  }

  // f(i, s, n) for the vectors of s = sum of the first `blocks` partials of set `set`, in block order,
  // over parameter indices [begin, begin + count): s holds indices begin + i .. begin + i + n - 1.
  template <typename F>
  void sum_blocks(int set, int64_t blocks, int64_t begin, int64_t count, F&& f) const {
    const float* first = partials_.data() + set * max_blocks_ * partial_size_ + begin;
    auto sum_vector = [&](int64_t i, auto load) {
      simd::vfloat sum = load(first + i);
      for (int64_t k = 1; k < blocks; ++k) sum += load(first + k * partial_size_ + i);
      return sum;
    };
    int64_t i = 0;
    for (; i + simd::kWidth <= count; i += simd::kWidth)
      f(i, sum_vector(i, [](const float* p) { return simd::load(p); }), simd::kWidth);
    if (i < count) {
      const int64_t n = count - i;
      f(i, sum_vector(i, [n](const float* p) { return simd::load_partial(p, n); }), n);
    }
  }

  double block_loss_sum(int set, int64_t blocks) const {
    double loss = 0.0;
    for (int64_t k = 0; k < blocks; ++k) loss += block_loss_[set * max_blocks_ + k];
    return loss;
  }
  int64_t block_correct_sum(int set, int64_t blocks) const {
    int64_t correct = 0;
    for (int64_t k = 0; k < blocks; ++k) correct += block_correct_[set * max_blocks_ + k];
    return correct;
  }

  double loss_sum() const { return loss_sum_; }
  int64_t correct() const { return correct_; }

 private:
  // Rows of a gradient group (tuning.hpp, kGradientGroupRows): whole lane tiles, at least one, with
  // the group's gradients within kGradientGroupBytes and its rows within a quarter of L2.
  static int64_t gradient_group_rows(int64_t classes, int64_t features) {
    const int64_t row_bytes = std::max<int64_t>(1, features * static_cast<int64_t>(sizeof(T)));
    const int64_t rows = std::min({kGradientGroupRows, kGradientGroupBytes / (classes * int64_t{sizeof(float)}),
                                   machine_facts().l2.value / 4 / row_bytes});
    return std::max<int64_t>(simd::kWidth, rows / simd::kWidth * simd::kWidth);
  }

  // Per-thread workspace of one block. Each thread's starts on a cache line of its own: x_rows is
  // written for every tile and read in the forward's inner loop, and when the threads' Scratches
  // shared a line, each tile's writes took that line from the other core.
  struct alignas(kCacheLineBytes) Scratch {
    LineAlignedVector<float> logits;          // (C, kWidth): the tile's logits, then its gradient
    LineAlignedVector<float> db_lanes;        // (C, kWidth): the block's db, one partial sum per lane
    LineAlignedVector<float> group_gradient;  // (C, group rows): the gradients of the group's rows
    std::vector<const T*> group_rows;         // (group rows): the group's rows of X
    std::vector<simd::vfloat> partial;        // kPartialVectors
    const T* x_rows[simd::kWidth];
    void resize(int64_t classes, int64_t group) {
      logits.resize(static_cast<size_t>(classes * simd::kWidth));
      db_lanes.resize(static_cast<size_t>(classes * simd::kWidth));
      group_gradient.resize(static_cast<size_t>(classes * group));
      group_rows.resize(static_cast<size_t>(group));
      partial.resize(kPartialVectors);
    }
  };

  // Block slot k (set * max_blocks_ + block) over batch rows [begin, end).
  void run_block(int64_t k, int64_t begin, int64_t end, const BatchRows<T>& batch, const int64_t* labels,
                 const ClassMajorWeights& w, float x_scale, float grad_scale, float* row_loss, float* grad_x) {
    const int64_t C = classes_, D = features_, G = group_rows_;
    float* dwt = partials_.data() + k * partial_size_;
    float* db = dwt + C * D;
    Scratch& scratch = scratch_[thread_index()];
    std::fill(scratch.db_lanes.begin(), scratch.db_lanes.end(), 0.0f);

    LaneLoss totals{simd::zero(), simd::zero()};
    for (int64_t group = begin; group < end; group += G) {
      const int64_t group_end = std::min(end, group + G);
      for (int64_t start = group; start < group_end; start += simd::kWidth) {
        const LaneLoss tile = forward_tile(scratch, start, start - group, end, batch, labels, w, x_scale, grad_scale,
                                           row_loss, grad_x);
        totals.loss += tile.loss;
        totals.correct += tile.correct;
      }
#if CSOFTMAX_AMX_COMPILED
      if constexpr (std::is_same_v<T, uint8_t>)
        if (w.amx && amx_grad_weight(dwt, scratch.group_rows.data(), group_end - group,
                                     scratch.group_gradient.data(), G, C, D, group == begin))
          continue;
#endif
      for (int64_t c0 = 0; c0 < C; c0 += kGradClassTile) {
        const int nc = static_cast<int>(std::min<int64_t>(kGradClassTile, C - c0));
        with_class_tile<kGradClassTile>(nc, [&](auto tile_classes) {
          constexpr int NC = decltype(tile_classes)::value;
          grad_weight_tile<T, NC>(dwt + c0 * D, scratch.group_rows.data(), static_cast<int>(group_end - group),
                                  scratch.group_gradient.data() + c0 * G, 1, G, D, group == begin);
        });
      }
    }
    for (int64_t c = 0; c < C; ++c) db[c] = simd::hsum(simd::load(scratch.db_lanes.data() + c * simd::kWidth));
    block_loss_[k] = simd::hsum(totals.loss);
    block_correct_[k] = static_cast<int64_t>(simd::hsum(totals.correct));
  }

  // The lane tile of rows [start, min(start + kWidth, end)) of a block: logits, softmax, loss and the
  // logits' gradient, kept in the group's columns from `column` on; each row's loss and dX too when
  // asked. A group is whole tiles, so only the block's last tile can be short, and column + kWidth <=
  // group rows.
  LaneLoss forward_tile(Scratch& scratch, int64_t start, int64_t column, int64_t end, const BatchRows<T>& batch,
                        const int64_t* labels, const ClassMajorWeights& w, float x_scale, float grad_scale,
                        float* row_loss, float* grad_x) {
    const int64_t C = classes_, D = features_, G = group_rows_;
    constexpr int W = simd::kWidth;
    const int rows = static_cast<int>(std::min<int64_t>(W, end - start));
    simd::vfloat tile_labels = simd::zero();
    for (int r = 0; r < W; ++r) {  // a short tile repeats its last row; those lanes are masked out
      const int64_t i = start + std::min(r, rows - 1);
      scratch.x_rows[r] = batch.row(i);
      tile_labels[r] = static_cast<float>(labels[batch.source(i)]);
    }
    batch.prefetch_tile_ahead(start, end, D);
    float* z = scratch.logits.data();
    lane_logits(z, scratch.x_rows, w, x_scale, scratch.partial.data());
    const LaneLoss tile = cross_entropy_grad_lanes(z, C, tile_labels, rows, grad_scale, x_scale, scratch.db_lanes.data());
    for (int r = 0; r < rows; ++r) scratch.group_rows[column + r] = scratch.x_rows[r];
    for (int64_t c = 0; c < C; ++c) simd::store(scratch.group_gradient.data() + c * G + column, simd::load(z + c * W));
    if (row_loss) simd::store_partial(row_loss + start, tile.loss, rows);
    if (grad_x)
      for (int r = 0; r < rows; ++r) grad_input_row(grad_x + (start + r) * D, z + r, W, w.wt, C, D);
    return tile;
  }

  int64_t classes_, features_, partial_size_, max_blocks_, group_rows_;
  LineAlignedVector<float> partials_;  // partial_size_ apart: each block's starts on a cache line
  std::vector<double> block_loss_;
  std::vector<int64_t> block_correct_;
  std::vector<Scratch> scratch_;
  double loss_sum_ = 0.0;
  int64_t correct_ = 0;
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
