"""The chapter's math in plain NumPy: the reference every kernel is tested against.

Written the way the chapter writes it, with the two changes numerics demand: softmax subtracts the
row maximum before exponentiating, and the loss comes from log-sum-exp of the logits, never from the
log of a probability. The chapter's originals are kept as `naive_softmax` and `naive_cross_entropy`
to show what goes wrong without those changes (exercises 1-3).

Every function computes in `dtype` (float32 by default, like the kernels; pass np.float64 for a
ground truth).
"""

from __future__ import annotations

import numpy as np

from .result import LinearCrossEntropyResult, check_reduction, reduce_loss

__all__ = [
    "naive_softmax",
    "naive_cross_entropy",
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "linear_logits",
    "linear_softmax",
    "linear_cross_entropy",
    "predict",
    "check_labels",
    "correct_predictions",
    "logistic_loss_gradient",
    "logistic_hessian_product",
]


def naive_softmax(X):
    """The chapter's softmax: exp(X) / sum exp(X). Overflows to inf/nan once a logit passes ~88 (float32)."""
    X_exp = np.exp(X)
    partition = X_exp.sum(1, keepdims=True)
    return X_exp / partition


def naive_cross_entropy(y_hat, y):
    """The chapter's cross-entropy: -log(y_hat[range(n), y]). Returns inf where a probability underflowed to 0."""
    return -np.log(y_hat[range(len(y_hat)), y])


def logsumexp(Z):
    """log sum_j exp(Z[i, j]) per row, shifted by the row maximum so nothing overflows."""
    m = Z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(Z - m).sum(axis=-1, keepdims=True)))[..., 0]


def softmax(Z):
    """Row-wise softmax, stable: exp(Z - max) / sum."""
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)


def log_softmax(Z):
    """Row-wise log-softmax: Z - logsumexp(Z), never log(softmax(Z))."""
    return Z - logsumexp(Z)[..., None]


def check_labels(y, classes, ignore_index=None, name="y"):
    """Every label in [0, classes) or equal to ignore_index: NumPy would read -1 as the last class."""
    y = np.asarray(y)
    bad = (y < 0) | (y >= classes)
    if ignore_index is not None:
        bad &= y != ignore_index
    if bad.any():
        i = int(np.argmax(bad))
        ignored = "" if ignore_index is None else f" and is not ignore_index ({ignore_index})"
        raise ValueError(f"{name}: label {y[i]} at position {i} is outside [0, {classes}){ignored}")


def cross_entropy(Z, y, reduction="mean"):
    """Cross-entropy from logits Z (B, C) and integer labels y (B,): logsumexp(Z) - Z[y]."""
    check_reduction(reduction)
    y = np.asarray(y)
    check_labels(y, Z.shape[1])
    row_loss = logsumexp(Z) - Z[np.arange(len(y)), y]
    return reduce_loss(row_loss, reduction)


def correct_predictions(Z, y, kept=None):
    """Rows whose argmax is their label (the first on ties), among the `kept` ones. A row with a NaN
    logit is never correct: numpy.argmax would name the NaN's class, a kernel's scan class 0."""
    hits = (Z.argmax(axis=1) == y) & ~np.isnan(Z).any(axis=1)
    return int((hits if kept is None else hits & kept).sum())


def _batch(X, y, rows, x_scale, dtype):
    """The batch as the kernels see it: rows gathered (from X and y), X scaled, in dtype."""
    if rows is not None:
        X = X[rows]
        y = None if y is None else y[rows]
    Xs = np.asarray(X).astype(dtype)  # a copy, always: scaled in place, one array per batch
    Xs *= dtype(x_scale)
    return Xs, y


def linear_logits(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The chapter's `X @ W + b` with X scaled by x_scale (and gathered by rows)."""
    Xs, _ = _batch(X, None, rows, x_scale, dtype)
    return Xs @ W.astype(dtype) + b.astype(dtype)


def linear_softmax(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The chapter's `net`: softmax(X @ W + b)."""
    return softmax(linear_logits(X, W, b, x_scale=x_scale, rows=rows, dtype=dtype))


def predict(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The most likely class of each row (the first one on ties)."""
    return linear_logits(X, W, b, x_scale=x_scale, rows=rows, dtype=dtype).argmax(axis=1)


def linear_cross_entropy(X, W, b, y, *, x_scale=1.0, rows=None, reduction="mean", grad_input=False,
                         ignore_index=None, label_smoothing=0.0, layout="DC", row_weights=None, class_weight=None,
                         z_loss=0.0, softcap=None, dtype=np.float32):
    """Loss and gradients of softmax regression on one batch, as the chapter computes them by autograd.

    Z = x_scale X W + b;  loss_i = logsumexp(Z_i) - (1 - eps) Z[i, y_i] - (eps / C) sum_c Z[i, c]
    G = (softmax(Z) - (1 - eps) onehot(y) - eps / C) / n for "mean" (1 for "sum" and "none"), with
    n the number of rows whose label is not ignore_index; ignored rows have loss 0 and G = 0.
    grad_W = (x_scale X)^T G;  grad_b = sum_i G_i;  grad_X = x_scale G W^T.
    W is (D, C) for layout="DC", (C, D) for layout="CD" (grad_W follows); b may be None.
    row_weights (B,) scales each row of G: the gradients of sum_i w_i loss_i (over n for "mean").
    class_weight (C,) is PyTorch's `weight` (cw, 1 without it): row i's loss becomes
    (1 - eps) cw[y_i] (lse_i - Z[i, y_i]) + (eps / C) sum_c cw[c] (lse_i - Z[i, c]), and n becomes
    the sum of cw[y_i] over the rows not ignored.
    z_loss adds z_loss lse_i^2 to each kept row's loss (its gradient 2 z_loss lse_i softmax(Z_i)), not
    weighted by cw, its mean over the kept rows; the result's z_loss is that term, reduced.
    softcap s replaces Z by s tanh(Z / s) (after the bias), and G by G (1 - (Z / s)^2).
    The result's lse holds the per-row log-sum-exp; predicted, row_correct and accuracy the argmax,
    whether each kept row predicts its label, and their share of the kept rows.
    """
    check_reduction(reduction)
    if layout not in ("DC", "CD"):
        raise ValueError(f"layout must be 'DC' or 'CD', got {layout!r}")
    Xs, y = _batch(X, y, rows, x_scale, dtype)
    y = np.asarray(y)
    W = (W.T if layout == "CD" else W).astype(dtype)
    Z = Xs @ W
    if b is not None:
        Z = Z + b.astype(dtype)
    if softcap is not None:
        Z = dtype(softcap) * np.tanh(Z / dtype(softcap))
    C = Z.shape[1]
    check_labels(y, C, ignore_index)
    eps = dtype(label_smoothing)
    kept = np.ones(len(y), dtype=bool) if ignore_index is None else y != ignore_index
    target = np.where(kept, y, 0)  # any class: ignored rows are zeroed below
    index = np.arange(len(y))
    cw = np.ones(C, dtype) if class_weight is None else np.asarray(class_weight).astype(dtype)
    wy = cw[target]
    lse = logsumexp(Z)
    row_loss = (1 - eps) * wy * (lse - Z[index, target]) + eps / C * ((lse[:, None] - Z) * cw).sum(axis=1)
    row_loss[~kept] = 0
    G = ((1 - eps) * wy + eps / C * cw.sum())[:, None] * np.exp(Z - lse[:, None]) - eps / C * cw
    G[index, target] -= (1 - eps) * wy
    G[~kept] = 0
    if row_weights is not None:
        G *= np.asarray(row_weights, dtype=dtype)[:, None]
    weight_sum = float(wy[kept].sum(dtype=np.float64))
    counted = int(kept.sum())
    if reduction == "mean":
        G = G / dtype(weight_sum) if weight_sum > 0 else np.zeros_like(G)  # the kernels' rule
    loss = reduce_loss(row_loss, reduction, counted=weight_sum)
    z_term = None
    if z_loss:
        row_z = np.where(kept, dtype(z_loss) * lse * lse, 0).astype(dtype)
        Gz = (2 * dtype(z_loss) * np.where(kept, lse, 0))[:, None] * np.exp(Z - lse[:, None])
        if row_weights is not None:
            Gz *= np.asarray(row_weights, dtype=dtype)[:, None]
        if reduction == "mean":  # zero gradients when nothing counts, as above
            Gz = Gz / dtype(counted) if weight_sum > 0 else np.zeros_like(Gz)
        G = G + Gz
        z_term = reduce_loss(row_z, reduction, counted=counted)
        loss = loss + z_term
    if softcap is not None:
        G = G * (1 - (Z / dtype(softcap)) ** 2)
    grad_W = Xs.T @ G
    return LinearCrossEntropyResult(
        loss=loss,
        grad_W=grad_W.T if layout == "CD" else grad_W,
        grad_b=None if b is None else G.sum(axis=0),
        grad_X=(G @ W.T) * dtype(x_scale) if grad_input else None,
        correct=correct_predictions(Z, y, kept),
        lse=lse,
        z_loss=z_term,
        predicted=Z.argmax(axis=1),
        row_correct=(Z.argmax(axis=1) == y) & kept & ~np.isnan(Z).any(axis=1),
        accuracy=correct_predictions(Z, y, kept) / counted if counted else float("nan"),
    )


# --- scikit-learn's LogisticRegression objective (full batch, float64) --------------------------------
# The estimator's loss and its derivatives, computed the plain way with the whole (n, K) logit matrix in
# memory: what the fused kernel (csoftmax.ops.logistic_loss_gradient) must reproduce without it.


def _logistic_inputs(X, sample_weight, coef, intercept, x_scale):
    """X scaled in float64, the weights (ones when None), the logits z = X coef^T + intercept."""
    Xs = np.asarray(X, dtype=np.float64) * np.float64(x_scale)
    coef = np.asarray(coef, dtype=np.float64)
    w = np.ones(len(Xs)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    Z = Xs @ coef.T
    if intercept is not None:
        Z = Z + np.asarray(intercept, dtype=np.float64)
    return Xs, w, Z


def _sigmoid(z):
    """1 / (1 + exp(-z)), exponentiating only -|z| so neither branch overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _log1p_exp(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): never exp of a large positive number."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def logistic_loss_gradient(X, y, sample_weight, coef, intercept, *, x_scale=1.0):
    """Sum of weighted losses of (multinomial or binomial) logistic regression and its gradients.

    z = x_scale X coef^T + intercept. With K >= 2 rows of coef (multinomial), loss_i = lse(z_i) - z[i, y_i];
    with one row (binomial, y in {0, 1}), loss_i = log(1 + exp(z_i)) - y_i z_i.
    Returns (sum_i w_i loss_i, d/dcoef (K', d), d/dintercept (K',) or None when intercept is None):
    no penalty and no division by sum(w) (the estimator adds both).
    """
    Xs, w, Z = _logistic_inputs(X, sample_weight, coef, intercept, x_scale)
    y = np.asarray(y)
    rows = np.arange(len(y))
    if Z.shape[1] == 1:  # binomial
        check_labels(y, 2)
        z = Z[:, 0]
        row_loss = _log1p_exp(z) - y * z
        G = (w * (_sigmoid(z) - y))[:, None]
    else:
        check_labels(y, Z.shape[1])
        lse = logsumexp(Z)
        row_loss = lse - Z[rows, y]
        G = np.exp(Z - lse[:, None])
        G[rows, y] -= 1
        G *= w[:, None]
    grad_intercept = None if intercept is None else G.sum(axis=0)
    return float(w @ row_loss), G.T @ Xs, grad_intercept


def logistic_hessian_product(X, sample_weight, coef, intercept, V, V_intercept, *, x_scale=1.0):
    """The Hessian of logistic_loss_gradient's loss sum at (coef, intercept), times (V, V_intercept).

    U = x_scale X V^T + V_intercept; multinomial: S_ic = w_i P_ic (U_ic - sum_k P_ik U_ik) with
    P = softmax(z); binomial: S_i = w_i p_i (1 - p_i) U_i. Returns (S^T x_scale X, sum_i S_i or None).
    The labels do not enter: the Hessian of cross-entropy does not depend on them.
    V_intercept is given exactly when intercept is (its direction for the intercept).
    """
    if (intercept is None) != (V_intercept is None):
        raise ValueError("V_intercept must be given exactly when intercept is")
    Xs, w, Z = _logistic_inputs(X, sample_weight, coef, intercept, x_scale)
    U = Xs @ np.asarray(V, dtype=np.float64).T
    if V_intercept is not None:
        U = U + np.asarray(V_intercept, dtype=np.float64)
    if Z.shape[1] == 1:
        p = _sigmoid(Z)
        S = w[:, None] * p * (1 - p) * U
    else:
        P = np.exp(Z - logsumexp(Z)[:, None])
        S = w[:, None] * P * (U - (P * U).sum(axis=1, keepdims=True))
    return S.T @ Xs, None if intercept is None else S.sum(axis=0)
