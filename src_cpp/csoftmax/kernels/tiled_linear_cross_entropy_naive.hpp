// The reference of the large-vocabulary kernel: one row of logits at a time, plain loops (O(C)
// memory, O(B C D) time, no blocking). It computes what kernels/tiled_linear_cross_entropy.hpp
// computes, in the most readable way; tests/test_tiled_linear_cross_entropy.py holds the two together
// (through _core.tiled_linear_cross_entropy(..., naive=True)).
#pragma once

#include "csoftmax/variant.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/large_vocab_io.hpp"
#include "csoftmax/kernels/weights.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

template <typename T>
inline void linear_cross_entropy_naive(LargeVocabOutputs& out, const BatchRows<T>& batch, const int64_t* labels,
                                       const LargeVocabWeights& w, float x_scale, const CrossEntropyOptions& opt) {
  const int64_t B = batch.count, C = w.classes, D = w.features;
  const gemm::MatrixView wc = w.class_rows();
  std::vector<float> z(static_cast<size_t>(C)), x(static_cast<size_t>(D));
  if (out.grad_w) std::fill(out.grad_w, out.grad_w + C * D, 0.0f);
  if (out.grad_b) std::fill(out.grad_b, out.grad_b + C, 0.0f);
  out.correct = 0;
  out.loss_sum = 0;
  out.z_loss_sum = 0;
  for (int64_t i = 0; i < B; ++i) {
    const T* xi = batch.row(i);
    for (int64_t d = 0; d < D; ++d) x[d] = static_cast<float>(xi[d]) * x_scale;
    for (int64_t c = 0; c < C; ++c) {
      float s = w.bias ? w.bias[c] : 0.0f;
      for (int64_t d = 0; d < D; ++d) s += x[d] * wc(c, d);
      z[c] = opt.softcap != 0.0f ? opt.softcap * std::tanh(s / opt.softcap) : s;
    }
    const int64_t label = labels[batch.source(i)];
    int64_t argmax = 0;
    bool nan = std::isnan(z[0]);
    for (int64_t c = 1; c < C; ++c) {
      if (z[c] > z[argmax]) argmax = c;
      nan |= std::isnan(z[c]);
    }
    const float m = z[argmax];
    float sum = 0.0f;
    double shifted_sum = 0.0;  // sum_c w_c (z_c - m)
    for (int64_t c = 0; c < C; ++c) {
      sum += std::exp(z[c] - m);
      shifted_sum += static_cast<double>(opt.class_weight(c)) * (z[c] - m);
    }
    const float log_sum = std::log(sum);
    if (out.row_lse) out.row_lse[i] = m + log_sum;
    const bool ignored = opt.ignored(label);
    const float eps = opt.label_smoothing;
    // (1 - eps) w_y (lse - z_y) + (eps / C) sum_c w_c (lse - z_c)
    const float loss = ignored ? 0.0f
                               : (1 - eps) * opt.class_weight(label) * (log_sum + m - z[label]) +
                                     static_cast<float>(eps / C * (opt.class_weight_total * log_sum - shifted_sum));
    const RowGradient grad = opt.row_gradient(i, label, C, m + log_sum);
    const float z_loss = ignored ? 0.0f : opt.row_z_loss(m + log_sum);
    out.row_loss[i] = loss + z_loss;
    if (out.row_z_loss) out.row_z_loss[i] = z_loss;
    out.loss_sum += loss;
    out.z_loss_sum += z_loss;
    const bool correct = !ignored && !nan && argmax == label;
    out.correct += correct;
    if (out.row_argmax) out.row_argmax[i] = argmax;
    if (out.row_correct) out.row_correct[i] = correct;
    for (int64_t c = 0; c < C; ++c) {
      const float slope = opt.softcap != 0.0f ? 1.0f - (z[c] / opt.softcap) * (z[c] / opt.softcap) : 1.0f;
      const float g = grad.scale * slope *
                      (grad.alpha * std::exp(z[c] - m) / sum - grad.gamma * opt.class_weight(c) -
                       (c == label ? grad.beta : 0.0f));
      if (out.grad_b) out.grad_b[c] += g;
      for (int64_t d = 0; d < D; ++d) {
        if (out.grad_w) {
          float& dw = w.layout == WeightLayout::kClassMajor ? out.grad_w[c * D + d] : out.grad_w[d * C + c];
          dw += g * x[d];
        }
      }
      z[c] = g;
    }
    if (out.grad_x)
      for (int64_t d = 0; d < D; ++d) {
        float s = 0.0f;
        for (int64_t c = 0; c < C; ++c) s += z[c] * wc(c, d);
        out.grad_x[i * D + d] = s * x_scale;
      }
  }
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
