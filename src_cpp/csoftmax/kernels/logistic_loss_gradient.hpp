// scikit-learn's LogisticRegression loss and its gradient over the whole of X, in one pass:
//
//   z_i = x_scale x_i . coef^T + intercept
//   multinomial (K >= 2 coef rows):  loss_i = lse(z_i) - z[i, y_i];           g_i = w_i (softmax(z_i) - onehot(y_i))
//   binomial (1 coef row, y in {0,1}): loss_i = log(1 + exp(z_i)) - y_i z_i;  g_i = w_i (sigmoid(z_i) - y_i)
//   loss_sum = sum_i w_i loss_i;  grad_coef (K, d) = sum_i g_i^T x_scale x_i;  grad_intercept = sum_i g_i
//
// No penalty and no division by sum(w): the estimator adds both.
//
// Precision: everything, the logits included, is computed in float64, also for float32 and uint8 X
// (widened as a tile is packed). Measured on Fashion-MNIST (60000 x 784 / 255, K = 10, coef after 300
// L-BFGS-B iterations at C = 1, objective 0.356922; `python benchmarks/bench_logistic_kernel.py
// --precision`), against the float64 reference:
//   float32 logits (float32 X . float32 coef, float64 after): loss sum off by 1.9e-8 relative, the
//     gradient by 1.1e-5 of its largest entry;
//   these float64 logits: 1.7e-16 and 1.5e-14.
// 1.9e-8 of the objective (~7e-9 absolute) is far more than the differences L-BFGS-B's line search
// and stopping test (ftol = 64 eps, ~1.4e-14 relative) are made to resolve: near the end the optimizer
// would compare rounding noise, and the estimator must reach scikit-learn's objective to 1e-6 relative
// and show it got no higher. So exactness wins; the price is the float64 FMA rate, half the float32
// one (benchmarks/bench_logistic_kernel.py reports both percentages of peak).
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "csoftmax/kernels/logistic_pass.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::logistic {

// Class codes as int32 or int64, read in place.
struct Labels {
  const int32_t* narrow;  // one of the two is set
  const int64_t* wide;
  int64_t operator[](int64_t i) const { return narrow ? narrow[i] : wide[i]; }
};

// The losses of one row and their derivatives with respect to its logits; w is the row's weight.
// Never exponentiates a positive number: lse is shifted by the row max, log(1 + e^z) taken as
// max(z, 0) + log1p(e^-|z|).
inline double multinomial_row(const double* z, int64_t K, int64_t label, double w, double* g) {
  const double m = *std::max_element(z, z + K);
  const double sum = exp_shifted(g, z, K, m);
  const double log_sum = std::log(sum);
  for (int64_t c = 0; c < K; ++c) g[c] *= w / sum;
  g[label] -= w;
  return w * ((m - z[label]) + log_sum);
}

inline double binomial_row(double z, int64_t label, double w, double* g) {
  const double e = std::exp(-std::abs(z));
  const double p = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  *g = w * (p - static_cast<double>(label));
  return w * (std::max(z, 0.0) + std::log1p(e) - static_cast<double>(label) * z);
}

// coef (K, d), intercept (K) or nullptr, weight (n) or nullptr for ones; labels in [0, max(K, 2)),
// coef finite (checked by the caller). Writes grad_coef (K, d) and grad_intercept (K) when not nullptr;
// returns loss_sum.
template <typename T>
inline double logistic_loss_gradient(double* grad_coef, double* grad_intercept, const MatrixView<T>& X,
                                     const Labels& y, const double* weight, const double* coef,
                                     const double* intercept, double x_scale, int64_t K) {
  const int64_t d = X.cols;
  std::vector<double> P(static_cast<size_t>(K * padded_features(d))), bias(static_cast<size_t>(K), 0.0);
  pack_parameters(P.data(), coef, K, d);
  if (intercept) std::copy(intercept, intercept + K, bias.begin());
  PassOutput result{grad_coef, grad_intercept, 0.0};
  auto row = [&](int64_t i, const double* z, double* g) {
    const double w = weight ? weight[i] : 1.0;
    return K == 1 ? binomial_row(z[0], y[i], w, g) : multinomial_row(z, K, y[i], w, g);
  };
  linear_pass(result, X, x_scale, P.data(), bias.data(), K, K, row);
  return result.loss;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::logistic
