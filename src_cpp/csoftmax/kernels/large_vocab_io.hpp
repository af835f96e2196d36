// The options and outputs of the large-vocabulary kernels: the tiled one and its naive reference.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>

namespace csoftmax::CSOFTMAX_VARIANT {

// One row's gradient with respect to its logits, G_c = scale (alpha p_c - gamma w_c - beta [c == label]),
// p = softmax(z), w the class weights (1 without them); scale = 0 for an ignored row. The plain loss
// has alpha = beta = 1, gamma = 0, so the factors multiply nothing by anything but 1 (a single class
// keeps a gradient of exactly 0).
struct RowGradient {
  float scale = 0.0f, alpha = 0.0f, beta = 0.0f, gamma = 0.0f;
};

struct CrossEntropyOptions {
  float grad_scale = 1.0f;       // 1 / (sum of the counted rows' class weights) for a mean, 1 for a sum
  float label_smoothing = 0.0f;  // eps in [0, 1]
  bool has_ignore_index = false;
  int64_t ignore_index = -100;   // rows with this label count for nothing (their lse is still computed)
  const float* row_weights = nullptr;  // (B) optional: gradients of sum_i row_weights[i] * loss_i
  // (C) optional, PyTorch's `weight`: row i's loss is
  //   (1 - eps) w[y_i] (lse_i - z[i, y_i]) + (eps / C) sum_c w[c] (lse_i - z[i, c])
  const float* class_weights = nullptr;
  float class_weight_total = 0.0f;  // sum_c w[c] (C without class weights), summed in float64
  // z-loss: z_loss lse_i^2 added to each counted row's loss, not scaled by class weights; its
  // gradient is scaled by z_grad_scale (1 / counted rows for a mean, 1 for a sum) where the
  // cross-entropy's is by grad_scale: z_grad_ratio = z_grad_scale / grad_scale (0 when that is 0).
  float z_loss = 0.0f;
  float z_grad_ratio = 1.0f;
  // Soft cap (0: none): every logit becomes softcap tanh(z / softcap) before the softmax, and the
  // gradient goes through the cap (times 1 - tanh^2).
  float softcap = 0.0f;

  bool ignored(int64_t label) const { return has_ignore_index && label == ignore_index; }
  float class_weight(int64_t c) const { return class_weights ? class_weights[c] : 1.0f; }
  // The factor of row i's gradient.
  float row_scale(int64_t i) const { return row_weights ? grad_scale * row_weights[i] : grad_scale; }

  // The z-loss of a counted row.
  float row_z_loss(float lse) const { return z_loss * lse * lse; }

  // d loss_i / d z_i in the form of RowGradient, for row i (of the batch) with this label and lse.
  RowGradient row_gradient(int64_t i, int64_t label, int64_t classes, float lse) const {
    RowGradient g;
    if (ignored(label)) return g;
    const float eps = label_smoothing, wy = class_weight(label);
    g.scale = row_scale(i);
    g.alpha = (1.0f - eps) * wy + eps * class_weight_total / static_cast<float>(classes);
    if (z_loss != 0.0f) g.alpha += 2.0f * z_loss * lse * z_grad_ratio;  // d(z_loss lse^2)/dz = 2 z_loss lse p
    g.beta = (1.0f - eps) * wy;
    g.gamma = eps / static_cast<float>(classes);
    return g;
  }
};

// What the kernel writes. row_loss (B) is required; the rest may be nullptr.
struct LargeVocabOutputs {
  float* row_loss;       // (B) per-row loss (z-loss included), 0 for ignored rows
  float* row_z_loss;     // (B) per-row z-loss term, 0 for ignored rows
  float* row_lse;        // (B) per-row log-sum-exp
  int64_t* row_argmax;   // (B) per-row predicted class (the first maximum)
  uint8_t* row_correct;  // (B) per-row 1 where the row is counted and its argmax is its label
  float* grad_w;         // W's shape and layout
  float* grad_b;         // (C)
  float* grad_x;         // (B, D)
  int64_t correct = 0;   // rows (not ignored) whose argmax is their label
  double loss_sum = 0;   // sum of row_loss less row_z_loss (the cross-entropy), in row order
  double z_loss_sum = 0; // sum of row_z_loss, in row order
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
