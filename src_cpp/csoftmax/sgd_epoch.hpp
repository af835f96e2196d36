// Minibatch SGD over a whole epoch without leaving C++: the chapter's training loop, fused.
//
// Each minibatch is gathered from X by the epoch's shuffled order (no copy), run through the fused
// step, and applied as W -= lr * mean gradient, like the chapter's sgd(params, lr, batch_size) with
// loss.sum().backward(). One parallel region spans the epoch, so threads are not restarted per batch.
#pragma once

#include <algorithm>
#include <cstdint>

#include "csoftmax/batch_rows.hpp"
#include "csoftmax/linear_cross_entropy.hpp"

namespace csoftmax {

struct EpochTotals {
  double loss_sum;  // sum of the per-example losses, each taken before its batch's update
  int64_t correct;  // examples whose argmax was right, before the update
};

// order: the n row indices of the epoch, in visiting order; wt (C, D) and bias (C) are updated in place.
template <typename T>
EpochTotals sgd_epoch(const T* X, int64_t stride, const int64_t* labels, const int64_t* order, int64_t n,
                      int64_t batch_size, float lr, float x_scale, float* wt, float* bias, int64_t classes,
                      int64_t features, int threads) {
  FusedLinearCrossEntropy<T> step(std::min(batch_size, n), classes, features, threads);
  const ClassMajorWeights weights{wt, bias, classes, features};
  GradientSink sink;
  sink.wt = wt;
  sink.bias = bias;
  sink.lr = lr;
#pragma omp parallel num_threads(threads) if (threads > 1 && worth_threads(std::min(batch_size, n), features, classes))
  for (int64_t start = 0; start < n; start += batch_size) {
    const BatchRows<T> batch{X, stride, order + start, std::min(batch_size, n - start)};
    step.run(batch, labels, weights, x_scale, 1.0f / static_cast<float>(batch.count), nullptr, nullptr, sink);
  }
  return EpochTotals{step.loss_sum(), step.correct()};
}

}  // namespace csoftmax
