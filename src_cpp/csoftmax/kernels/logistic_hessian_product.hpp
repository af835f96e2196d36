// The Hessian of logistic_loss_gradient's loss sum times a direction (V, V_intercept), in one pass:
//
//   z_i = x_scale x_i . coef^T + intercept;   u_i = x_scale x_i . V^T + V_intercept   (one forward: [coef; V])
//   multinomial: p = softmax(z_i),  s_ic = w_i p_c (u_ic - sum_k p_k u_ik)
//   binomial:    p = sigmoid(z_i),  s_i  = w_i p (1 - p) u_i
//   HV (K, d) = sum_i s_i^T x_scale x_i;   HV_intercept = sum_i s_i
//
// For Newton-type solvers: no penalty (the estimator adds V / C), labels do not enter. float64
// throughout, for the reason given in logistic_loss_gradient.hpp.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "csoftmax/kernels/logistic_pass.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::logistic {

// s (K) from row logits z (K) and directions u (K); w is the row's weight.
inline void multinomial_curvature_row(const double* z, const double* u, int64_t K, double w, double* s) {
  const double m = *std::max_element(z, z + K);
  const double sum = exp_shifted(s, z, K, m);
  double mean_u = 0.0;  // sum_k p_k u_k
  for (int64_t c = 0; c < K; ++c) mean_u += s[c] * u[c];
  mean_u /= sum;
  for (int64_t c = 0; c < K; ++c) s[c] = w * (s[c] / sum) * (u[c] - mean_u);
}

// p (1 - p) = e / (1 + e)^2 with e = exp(-|z|): symmetric in z, never exp of a positive number.
inline double binomial_curvature_row(double z, double u, double w) {
  const double e = std::exp(-std::abs(z));
  return w * (e / ((1.0 + e) * (1.0 + e))) * u;
}

// coef, V (K, d); intercept, V_intercept (K) both given or both nullptr; weight (n) or nullptr.
// Writes hv (K, d) and hv_intercept (K) when not nullptr.
template <typename T>
inline void logistic_hessian_product(double* hv, double* hv_intercept, const MatrixView<T>& X, const double* weight,
                                     const double* coef, const double* intercept, const double* V,
                                     const double* V_intercept, double x_scale, int64_t K) {
  const int64_t d = X.cols, dp = padded_features(d);
  std::vector<double> P(static_cast<size_t>(2 * K * dp)), bias(static_cast<size_t>(2 * K), 0.0);
  pack_parameters(P.data(), coef, K, d);
  pack_parameters(P.data() + K * dp, V, K, d);
  if (intercept) std::copy(intercept, intercept + K, bias.begin());
  if (V_intercept) std::copy(V_intercept, V_intercept + K, bias.begin() + K);
  PassOutput result{hv, hv_intercept, 0.0};
  auto row = [&](int64_t i, const double* zu, double* s) {
    const double w = weight ? weight[i] : 1.0;
    if (K == 1)
      s[0] = binomial_curvature_row(zu[0], zu[1], w);
    else
      multinomial_curvature_row(zu, zu + K, K, w, s);
    return 0.0;
  };
  linear_pass(result, X, x_scale, P.data(), bias.data(), 2 * K, K, row);
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::logistic
