// Minibatch SGD over a whole epoch without leaving C++: the chapter's training loop, fused.
//
// Each minibatch is gathered from X by the epoch's shuffled order (no copy), run through the fused
// step, and applied as W -= lr * mean gradient, like the chapter's sgd(params, lr, batch_size) after
// loss.sum().backward(). One parallel region spans the epoch, and a step costs one barrier (one that
// spins briefly, then sleeps: team_barrier.hpp): every thread keeps its own copy of [W | b] and applies
// the whole update to it (the same sums in the same order, so the copies stay identical), which saves
// the second barrier a shared W would need before the next step reads it. Partials alternate between
// two sets, so a step's blocks can be written while a slower thread still reads the previous step's.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/linear_cross_entropy.hpp"
#include "csoftmax/parallel/team_barrier.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

struct EpochTotals {
  double loss_sum;  // sum of the per-example losses, each taken before its batch's update
  int64_t correct;  // examples whose argmax was right, before the update
};

// Where one thread's time went over an epoch's steps, in seconds (benchmarks/bench_step_phases.py).
struct StepPhases {
  double blocks = 0.0;  // its blocks of the fused step (after packing W for AMX), and asking for the next rows
  double wait = 0.0;    // at the step's barrier, until the other threads are done with their blocks
  double update = 0.0;  // summing every block's partial (the other threads' from their cores) into its W
};

// Adds the time since the previous lap to a phase, when there is somewhere to add it.
class PhaseClock {
 public:
  explicit PhaseClock(StepPhases* out) : out_(out), last_(out ? Clock::now() : Clock::time_point{}) {}
  void lap(double StepPhases::*phase) {
    if (!out_) return;
    const Clock::time_point now = Clock::now();
    out_->*phase += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  StepPhases* out_;
  Clock::time_point last_;
};

// order: the n row indices of the epoch, in visiting order; wt (C, D) and bias (C) are updated in place.
// phases, when given, gets each thread's StepPhases (one per thread of the team that ran).
template <typename T>
EpochTotals sgd_epoch(const T* X, int64_t stride, const int64_t* labels, const int64_t* order, int64_t n,
                      int64_t batch_size, float lr, float x_scale, float* wt, float* bias, int64_t classes,
                      int64_t features, int threads, std::vector<StepPhases>* phases = nullptr) {
  const int64_t C = classes, D = features, params_size = C * D + C;
  const int64_t copy_stride = line_padded_floats(params_size);  // each copy starts on a cache line
  const int team = threads > 1 && worth_threads(std::min(batch_size, n), D, C) ? threads : 1;
  FusedLinearCrossEntropy<T> step(std::min(batch_size, n), C, D, team, /*partial_sets=*/2);
  LineAlignedVector<float> copies(static_cast<size_t>(team * copy_stride));  // [wt | bias] per thread
  for (int t = 0; t < team; ++t) {
    std::copy(wt, wt + C * D, copies.begin() + t * copy_stride);
    std::copy(bias, bias + C, copies.begin() + t * copy_stride + C * D);
  }
  double loss_sum = 0.0;
  int64_t correct = 0;
  const simd::vfloat rate = simd::broadcast(lr);
  // Every batch but the last has batch_size rows: two plans serve the whole epoch.
  const int64_t full_plan_rows = std::min(batch_size, n);
  const BlockPlan full_plan = plan_blocks(full_plan_rows, C, D);
  const BlockPlan last_plan = plan_blocks(n % batch_size ? n % batch_size : full_plan_rows, C, D);
  TeamBarrier barrier;
#pragma omp parallel num_threads(team) if (team > 1)
  {
#pragma omp single
    {
      barrier.set_team(team_size());
      if (phases) phases->assign(static_cast<size_t>(team_size()), StepPhases{});
    }  // (the single's barrier: the phases exist before anyone times into them)
    PhaseClock clock(phases ? phases->data() + thread_index() : nullptr);
    float* params = copies.data() + thread_index() * copy_stride;
    ClassMajorWeights weights{params, params + C * D, C, D};
    AmxWeights amx_storage;  // this thread's W, packed again after every update
    int set = 0;
    for (int64_t start = 0; start < n; start += batch_size, set ^= 1) {
      weights.amx = amx_weights_for<T>(amx_storage, weights);
      const BatchRows<T> batch{X, stride, order + start, std::min(batch_size, n - start)};
      const BlockPlan& plan = batch.count == full_plan_rows ? full_plan : last_plan;
      step.run_blocks(set, plan, batch, labels, weights, x_scale, 1.0f / static_cast<float>(batch.count), nullptr,
                      nullptr);
      if (start + batch_size < n) {  // while waiting for the other threads, fetch the next step's rows
        const BatchRows<T> next{X, stride, order + start + batch_size, std::min(batch_size, n - start - batch_size)};
        step.prefetch_first_tiles(next.count == full_plan_rows ? full_plan : last_plan, next);
      }
      clock.lap(&StepPhases::blocks);
      barrier.wait();
      clock.lap(&StepPhases::wait);
      const int64_t blocks = plan.blocks;
      step.sum_blocks(set, blocks, 0, params_size, [&](int64_t i, simd::vfloat gradient, int64_t count) {
        if (count == simd::kWidth)
          simd::store(params + i, simd::load(params + i) - rate * gradient);
        else
          simd::store_partial(params + i, simd::load_partial(params + i, count) - rate * gradient, count);
      });
      if (thread_index() == 0) {
        loss_sum += step.block_loss_sum(set, blocks);
        correct += step.block_correct_sum(set, blocks);
      }
      clock.lap(&StepPhases::update);
    }
  }
  std::copy(copies.begin(), copies.begin() + C * D, wt);
  std::copy(copies.begin() + C * D, copies.begin() + params_size, bias);
  return EpochTotals{loss_sum, correct};
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
