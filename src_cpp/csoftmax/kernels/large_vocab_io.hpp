// The options and outputs of the large-vocabulary kernels: the tiled one and its naive reference.
#pragma once

#include <cstdint>

namespace csoftmax {

struct CrossEntropyOptions {
  float grad_scale = 1.0f;       // 1 / (rows counted) for a mean, 1 for a sum
  float label_smoothing = 0.0f;  // eps in [0, 1]
  bool has_ignore_index = false;
  int64_t ignore_index = -100;   // rows with this label count for nothing (their lse is still computed)
  const float* row_weights = nullptr;  // (B) optional: gradients of sum_i row_weights[i] * loss_i
  bool ignored(int64_t label) const { return has_ignore_index && label == ignore_index; }
  // The factor of row i's gradient.
  float row_scale(int64_t i) const { return row_weights ? grad_scale * row_weights[i] : grad_scale; }
};

// What the kernel writes. row_loss (B) is required; the rest may be nullptr.
struct LargeVocabOutputs {
  float* row_loss;       // (B) per-row loss, 0 for ignored rows
  float* row_lse;        // (B) per-row log-sum-exp
  float* grad_w;         // W's shape and layout
  float* grad_b;         // (C)
  float* grad_x;         // (B, D)
  int64_t correct = 0;   // rows (not ignored) whose argmax is their label
  double loss_sum = 0;   // sum of row_loss, in row order
};

}  // namespace csoftmax
