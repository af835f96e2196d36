"""scikit-learn's logistic-regression objective over the flat parameter vector SciPy's optimizers see.

    f(coef, intercept) = (1/Σw) Σ_i w_i loss_i + ||coef||² / (2·C·Σw)

loss_i is the multinomial cross-entropy lse(z_i) − z[i, y_i] (coef of shape (K, d)) or, for two
classes, the binomial log(1 + exp(z_i)) − y_i z_i (one row of coef); z = X·coefᵀ + intercept and the
intercept is not penalized. The weighted loss sum and its gradient come from the fused kernel
(csoftmax.ops.logistic_loss_gradient), one pass over X; this module adds the penalty, divides by Σw and
packs the parameters.

The flat layout is scikit-learn's: the (K', d [+ 1]) matrix [coef | intercept] raveled in Fortran
order (the K' values of one feature next to each other; for one row simply [coef, intercept]). L-BFGS
is invariant to the order mathematically, but the same order gives it the same floating-point sums, so
both libraries take the same steps for as long as their gradients agree to the last bits.
"""

from __future__ import annotations

import numpy as np

from ..ops import logistic_hessian_product, logistic_loss_gradient


class LogisticObjective:
    """f and its derivatives on (X, y) for a given C; `params` is the flat vector described above.

    X: (n, d) array the kernel reads in place; y: (n,) int64 class codes in [0, n_classes);
    sample_weight: (n,) float64 with class weights multiplied in, or None (all ones).
    """

    def __init__(self, X, y, sample_weight, *, n_classes, C, fit_intercept):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n_features = X.shape[1]
        self.n_rows = 1 if n_classes == 2 else n_classes  # the binomial loss has one coefficient row
        self.fit_intercept = fit_intercept
        self.weight_sum = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
        self.l2_strength = 1.0 / (C * self.weight_sum)  # C = inf: no penalty

    @property
    def n_params(self):
        return self.n_rows * (self.n_features + int(self.fit_intercept))

    def unpack(self, params):
        """(coef (K', d) C-contiguous, intercept (K',) or None) from a flat vector, as the kernel takes them."""
        matrix = np.reshape(params, (self.n_rows, -1), order="F")
        coef = np.ascontiguousarray(matrix[:, : self.n_features], dtype=np.float64)
        intercept = np.array(matrix[:, -1], dtype=np.float64) if self.fit_intercept else None
        return coef, intercept

    def pack(self, coef, intercept):
        """The flat vector of (coef, intercept) (intercept ignored without fit_intercept)."""
        matrix = np.empty((self.n_rows, self.n_features + int(self.fit_intercept)), dtype=np.float64, order="F")
        matrix[:, : self.n_features] = coef
        if self.fit_intercept:
            matrix[:, -1] = intercept
        return matrix.ravel(order="F")

    def value(self, params):
        return self.value_and_gradient(params)[0]

    def value_and_gradient(self, params):
        """(f, ∇f as a flat vector): one pass over X."""
        coef, intercept = self.unpack(params)
        loss_sum, grad_coef, grad_intercept = self.loss_gradient_sums(coef, intercept)
        value = loss_sum / self.weight_sum + 0.5 * self.l2_strength * float(np.dot(coef.ravel(), coef.ravel()))
        grad_coef = grad_coef / self.weight_sum + self.l2_strength * coef
        grad_intercept = None if grad_intercept is None else grad_intercept / self.weight_sum
        return value, self.pack(grad_coef, grad_intercept)

    def hessian_product(self, params, direction):
        """∇²f(params) · direction as a flat vector: one pass over X."""
        coef, intercept = self.unpack(params)
        V, V_intercept = self.unpack(direction)
        hv_coef, hv_intercept = logistic_hessian_product(self.X, self.sample_weight, coef, intercept, V, V_intercept)
        hv_coef = hv_coef / self.weight_sum + self.l2_strength * V
        hv_intercept = None if hv_intercept is None else hv_intercept / self.weight_sum
        return self.pack(hv_coef, hv_intercept)

    def loss_gradient_sums(self, coef, intercept):
        """(Σ w·loss, its gradient in coef, in intercept or None): the one pass over X of an evaluation.

        The hook of the cluster fit (models/dask.py), which sums the same partials over a Dask array's
        row chunks."""
        return logistic_loss_gradient(self.X, self.y, self.sample_weight, coef, intercept)
