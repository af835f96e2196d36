"""The change of variables behind solver="lbfgs-whitened": coefficients on whitened features.

L-BFGS-B minimizes f(T(q)) over q = (W', b'), where T is the linear, invertible map

    W = W' · L⁻¹,    b = b' − W · μ

with μ the features' (weighted) mean and L the lower Cholesky factor of their (weighted) covariance
plus ε·I. In q the loss sees the features L⁻¹(x − μ): centered and decorrelated. The Hessian of the
softmax loss in W is close to (its class factor) ⊗ (the features' second moment), so this map takes
out the feature factor, which is what makes pixel data ill-conditioned: every pixel is positive (a
large common mean) and neighbours are strongly correlated. The objective and its minimizer are the
same; only the path differs. Measured on the full Fashion-MNIST at C = 1 (benchmarks/bench_estimator.py):
L-BFGS-B reaches scikit-learn's final objective in 117 iterations (121 passes) instead of 627 (686).

ε is 4λ, λ = 1/(C·Σw) the penalty's curvature: a row contributes at most p(1 − p) ≤ 1/4 times its
features' second moment, so in units of the covariance the penalty adds at least 4λ. Without
an intercept there is nothing to absorb the mean, and the uncentered second moment is used instead.

The mean and covariance are estimated on every step-th row, at most max(_MOMENT_ROWS, 16·d) of them: a
preconditioner needs no exact moments, and their cost grows with n · d² (on Fashion-MNIST every row
would cost 3.7 times the sample's multiply-adds). Memory: the (d, d) factor, built in place from
blocks of rows (_BLOCK_ROWS rows at a time), never an (n, d) copy of X.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack, solve_triangular

_MOMENT_ROWS = 16384  # rows the moments are estimated on (at least 16 per feature)
_BLOCK_ROWS = 128  # rows of X converted to float64 at a time while the second moment is accumulated
_RELATIVE_JITTER = 1e-10  # of the mean variance: keeps L positive definite when C = inf


class Whitening:
    """T and its transposed inverse on scikit-learn's flat parameter layout (see _logistic_objective)."""

    def __init__(self, objective):
        self.objective = objective  # its unpack / pack: the flat layout, in one place
        n, d = objective.X.shape
        step = max(1, n // max(_MOMENT_ROWS, 16 * d))
        weight = None if objective.sample_weight is None else objective.sample_weight[::step]
        mean, moment = _weighted_moments(objective.X[::step], weight)
        if objective.fit_intercept:
            moment = blas.dsyr(-1.0, mean, lower=1, a=moment, overwrite_a=1)  # covariance = E[xxᵀ] − μμᵀ
        self.mean = mean if objective.fit_intercept else np.zeros_like(mean)
        diagonal = np.diag_indices(d)
        moment[diagonal] += 4.0 * objective.l2_strength + _RELATIVE_JITTER * max(np.mean(moment[diagonal]), 0.0)
        factor, info = lapack.dpotrf(moment, lower=1, clean=1, overwrite_a=1)  # clean: upper triangle zeroed
        # Not positive definite (all features constant and no penalty): centering alone, still exact.
        self.factor = factor if info == 0 else np.eye(d)

    def to_original(self, q):
        """The parameters T(q) the objective is evaluated at."""
        coef_w, intercept_w = self.objective.unpack(q)
        coef = solve_triangular(self.factor, coef_w.T, lower=True, trans="T", check_finite=False).T
        intercept = None if intercept_w is None else intercept_w - coef @ self.mean
        return self.objective.pack(coef, intercept)

    def from_original(self, params):
        """q with T(q) = params (a warm start)."""
        coef, intercept = self.objective.unpack(params)
        intercept_w = None if intercept is None else intercept + coef @ self.mean
        return self.objective.pack(coef @ self.factor, intercept_w)

    def gradient_to_whitened(self, gradient):
        """∇(f∘T)(q) = Tᵀ ∇f(T(q)) from ∇f."""
        grad_coef, grad_intercept = self.objective.unpack(gradient)
        if grad_intercept is not None:
            grad_coef = grad_coef - np.outer(grad_intercept, self.mean)  # b depends on W through −W·μ
        grad_coef_w = solve_triangular(self.factor, grad_coef.T, lower=True, check_finite=False).T
        return self.objective.pack(grad_coef_w, grad_intercept)

    def gradient_to_original(self, gradient_w):
        """∇f from ∇(f∘T): the inverse of gradient_to_whitened (for the stopping rule and progress)."""
        grad_coef_w, grad_intercept = self.objective.unpack(gradient_w)
        grad_coef = grad_coef_w @ self.factor.T
        if grad_intercept is not None:
            grad_coef = grad_coef + np.outer(grad_intercept, self.mean)
        return self.objective.pack(grad_coef, grad_intercept)


def _weighted_moments(X, sample_weight):
    """(mean (d,), second moment (d, d) in the lower triangle) of X's rows, weighted, in float64.

    A block of rows is converted into a float64 buffer (scaled by √w), and BLAS's syrk adds its
    products into the one (d, d) array: memory beyond X is that array and the buffer."""
    n, d = X.shape
    block_rows = min(_BLOCK_ROWS, n)
    buffer = np.empty((block_rows, d), dtype=np.float64)
    total = np.zeros(d)
    moment = np.zeros((d, d), dtype=np.float64, order="F")
    root_weight = None if sample_weight is None else np.sqrt(sample_weight)
    for begin in range(0, n, block_rows):
        rows = buffer[: min(block_rows, n - begin)]
        block = X[begin : begin + len(rows)]
        if root_weight is None:
            np.copyto(rows, block)
            total += rows.sum(axis=0)
        else:
            np.multiply(block, root_weight[begin : begin + len(rows), None], out=rows)
            total += root_weight[begin : begin + len(rows)] @ rows
        # rowsᵀ rows: buffer rows are C-ordered, so rows.T is the F-ordered (d, m) matrix syrk reads in place
        moment = blas.dsyrk(1.0, rows.T, beta=1.0, c=moment, trans=0, lower=1, overwrite_c=1)
    weight_sum = float(n) if sample_weight is None else float(np.sum(sample_weight))
    if not weight_sum > 0:  # every sampled row has weight 0: any positive definite factor will do
        return np.zeros(d), np.eye(d, order="F")
    moment *= 1.0 / weight_sum
    return total / weight_sum, moment


class WhitenedObjective:
    """f∘T and its gradient at q: one pass over X each, at the parameters T(q)."""

    def __init__(self, objective, whitening):
        self.objective, self.whitening = objective, whitening

    def value(self, q):
        return self.objective.value(self.whitening.to_original(q))

    def value_and_gradient(self, q):
        value, gradient = self.objective.value_and_gradient(self.whitening.to_original(q))
        return value, self.whitening.gradient_to_whitened(gradient)
