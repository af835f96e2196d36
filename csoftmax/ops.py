"""The kernels' Python face: argument checks, dtype handling and result objects.

Conventions, as in PyTorch: `cross_entropy` takes logits (not probabilities) and integer labels;
W is (D, C) as in the chapter (X @ W + b). Inside, the kernels keep W class-major, (C, D), so each
logit is a dot product along D that fills every SIMD lane; the transposes at this boundary cost
O(C * D), nothing next to the O(B * C * D) of a step.

Inputs may be anything NumPy can view as an array (lists, NumPy arrays, CPU torch tensors that do
not require grad, ...). Floating inputs are computed in float32; X may also be uint8 (images), scaled
inside the kernel by `x_scale`. Non-contiguous inputs are copied; nothing is modified in place.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import positive_int
from .result import LinearCrossEntropyResult, check_reduction, reduce_loss

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "linear_softmax",
    "linear_cross_entropy",
    "predict",
    "logistic_loss_gradient",
    "logistic_hessian_product",
]


def _as_array(value, name):
    try:
        return np.asarray(value)
    except (RuntimeError, TypeError, ValueError) as exc:  # e.g. a torch tensor that requires grad
        raise TypeError(f"{name}: cannot be viewed as a NumPy array ({exc})") from None


def _as_float_array(value, name, ndim):
    """A floating-point array with `ndim` dimensions, as given (any float dtype, any strides)."""
    a = _as_array(value, name)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {a.shape}")
    return a


def _contiguous(a, dtype=None):
    """a as a C-contiguous, aligned array of `dtype` (a copy only where it is not one already): the
    kernels load elements through typed pointers, which a misaligned buffer (an odd byte offset, an
    array unpickled by Dask) would make undefined."""
    return np.require(a, dtype=dtype, requirements=["C", "A"])


def _as_float32(value, name, ndim):
    """A C-contiguous float32 array with `ndim` dimensions; other float dtypes are converted."""
    return _contiguous(_as_float_array(value, name, ndim), np.float32)


def _as_features(value, name="X"):
    """X as the kernels take it: (B, D) float32, or uint8 kept as is."""
    a = _as_array(value, name)
    if a.dtype == np.uint8:
        if a.ndim != 2:
            raise ValueError(f"{name}: expected 2 dimensions (batch, features), got shape {a.shape}")
        return _contiguous(a)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected float or uint8, got dtype {a.dtype}")
    return _as_float32(a, name, 2)


def _as_labels(value, name):
    """Integer labels (any integer dtype), 1-D, as int64; their range is checked by the kernels."""
    a = _as_array(value, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer labels, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name}: expected 1 dimension(s), got shape {a.shape}")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: values too large for int64")
    return _contiguous(a, np.int64)


def _as_rows(rows):
    return None if rows is None else _as_labels(rows, "rows")


def _as_scale(x_scale):
    try:
        scale = float(x_scale)
    except (TypeError, ValueError):
        raise TypeError(f"x_scale: expected a number, got {type(x_scale).__name__}") from None
    if not math.isfinite(scale):
        raise ValueError(f"x_scale: must be finite, got {scale}")
    return scale


def _rows_op(logits, what, axis):
    """Apply a row-wise kernel along `axis` of an array of any shape."""
    Z = _as_array(logits, "logits")
    if Z.ndim == 0:
        raise ValueError("logits: expected at least 1 dimension, got a scalar")
    if Z.size == 0:
        raise ValueError(f"logits: empty array of shape {Z.shape}")
    Z = np.moveaxis(Z, axis, -1)
    shape = Z.shape
    Z = _as_float32(Z.reshape(-1, shape[-1]), "logits", 2)
    return np.moveaxis(_core.softmax_rows(Z, what).reshape(shape), -1, axis)


def softmax(logits, axis=-1):
    """exp(z - max z) / sum exp(z - max z) along `axis`: every row sums to 1, nothing overflows."""
    return _rows_op(logits, "softmax", axis)


def log_softmax(logits, axis=-1):
    """z - logsumexp(z) along `axis`: finite wherever the logits are, even where softmax underflows to 0."""
    return _rows_op(logits, "log_softmax", axis)


def cross_entropy(logits, y, reduction="mean"):
    """Cross-entropy of logits (B, C) against integer labels (B,): logsumexp(z) - z[y], per row.

    Takes *logits*, like torch.nn.functional.cross_entropy. The chapter's version, which takes
    probabilities, is `csoftmax.d2l.cross_entropy`.
    """
    check_reduction(reduction)
    Z = _as_float32(logits, "logits", 2)
    labels = _as_labels(y, "y")
    if len(labels) != len(Z):
        raise ValueError(f"y: expected {len(Z)} labels for logits of shape {Z.shape}, got {len(labels)}")
    return reduce_loss(_core.softmax_rows(Z, "cross_entropy", y=labels), reduction)


def _forward(X, W, b, x_scale, what, rows=None):
    Wa, layout = _as_weights(W, "DC")  # a transposed view (the model's W) is read in place
    return _core.linear_forward(_as_features(X), Wa, _as_float32(b, "b", 1), what, rows=_as_rows(rows),
                                x_scale=_as_scale(x_scale), layout=layout)


def linear_softmax(X, W, b, x_scale=1.0, *, rows=None):
    """The chapter's `net`: softmax(x_scale * X @ W + b), shape (B, C)."""
    return _forward(X, W, b, x_scale, "softmax", rows)


def predict(X, W, b, x_scale=1.0, *, threshold=None, top_k=None, rows=None):
    """Predicted labels of softmax regression.

    By default the most likely class of each row (B,). With `threshold`, rows whose top probability
    is below it get -1: the model abstains instead of guessing (exercise 4). With `top_k`, the k most
    likely classes of each row, most likely first (B, k).
    """
    if threshold is None and top_k is None:
        return _forward(X, W, b, x_scale, "argmax", rows)
    if threshold is not None and top_k is not None:
        raise ValueError("predict: give threshold or top_k, not both")
    P = linear_softmax(X, W, b, x_scale, rows=rows)
    if top_k is not None:
        if positive_int(top_k, "top_k") > P.shape[1]:
            raise ValueError(f"top_k: expected an integer in [1, {P.shape[1]}], got {top_k!r}")
        top = np.argpartition(-P, top_k - 1, axis=1)[:, :top_k]
        order = np.argsort(-np.take_along_axis(P, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1)
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a probability in [0, 1], got {threshold}")
    labels = P.argmax(axis=1)
    labels[P.max(axis=1) < threshold] = -1
    return labels


# Up to this many classes the single-pass kernel (one row tile at a time through the forward, the
# softmax and dW in registers) is the faster one; past it the tiled kernel's blocked GEMMs win.
# Measured on the development machine (Zen 5, 2 threads, D = 784): the two tie near C = 32-48 at
# B = 256 and near C = 48-64 at B = 4096; at C = 128 the tiled kernel takes 0.56-0.65 of the time.
# Not a cache limit, so not derived from the caches: what the single-pass kernel keeps hot per row
# tile, W and the block's partial dW, is 8 C D bytes, 294 KiB at C = 48, D = 784; it leaves L1d from
# C = 8 on and would leave Zen 5's 1 MiB L2 only past C = 167 (the Intel Xeon's 2 MiB past 334). The
# tie is where the tiled kernel's 14 x 32 register tile and packed GEMMs outrun the single-pass
# kernel's 4 x 5 tile, a matter of instructions per FMA; benchmarks/bench_small_c.py measures it.
SMALL_C_MAX = 48

LAYOUTS = ("DC", "CD")
KERNELS = ("auto", "single_pass", "tiled")


def _other_layout(layout):
    return "CD" if layout == "DC" else "DC"


def _as_weights(W, layout):
    """W as a C-contiguous float32 array without copying a transposed view.

    Returns (array, array_layout): the array the kernels read, and its layout ("DC": (D, C), "CD":
    (C, D)); the other layout than the caller's when W is a transposed view, read in place (grad_W is
    then transposed back).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: must be 'DC' (W is (D, C), the chapter's) or 'CD' (W is (C, D), like "
                         f"torch.nn.Linear.weight), got {layout!r}")
    a = _as_float_array(W, "W", 2)
    if a.dtype == np.float32 and a.flags.aligned and not a.flags.c_contiguous and a.T.flags.c_contiguous:
        return a.T, _other_layout(layout)  # a transposed view: read it in place, in the other layout
    return _contiguous(a, np.float32), layout


def _check_weight_shape(W, layout, D):
    expected_axis = 1 if layout == "CD" else 0
    if W.shape[expected_axis] != D:
        shape = "(C, D)" if layout == "CD" else "(D, C)"
        other = "'DC' for (D, C) weights as in the chapter" if layout == "CD" else \
            "'CD' for (C, D) weights like torch.nn.Linear.weight"
        raise ValueError(f"W: expected shape {shape} with D = {D} for layout={layout!r}, got {W.shape}; "
                         f"pass layout={other}")


def _as_ignore_index(ignore_index):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an integer or None, got {type(ignore_index).__name__}")
    if not np.iinfo(np.int64).min <= int(ignore_index) <= np.iinfo(np.int64).max:
        raise ValueError(f"ignore_index: {ignore_index} does not fit in int64")
    return int(ignore_index)


def _as_smoothing(label_smoothing):
    try:
        eps = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing: expected a number, got {type(label_smoothing).__name__}") from None
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing: must be in [0, 1], got {label_smoothing}")
    return eps


def _as_coefficient(value, name):
    try:
        coefficient = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None
    if not (math.isfinite(coefficient) and coefficient >= 0.0):
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    return coefficient


def linear_cross_entropy(X, W, b, y, *, x_scale=1.0, rows=None, reduction="mean", grad_input=False,
                         ignore_index=None, label_smoothing=0.0, return_lse=False, layout="DC", row_weights=None,
                         grad_weight=True, kernel="auto", class_weight=None, z_loss=0.0, softcap=None,
                         return_predictions=False):
    """One fused step of softmax regression: loss, gradients and the number of correct predictions.

    X: (N, D) float (computed in float32) or uint8, scaled by x_scale inside the kernel (1/255 for
       images); read from memory once.
    W: (D, C) as in the chapter (layout="DC", the default), or (C, D) like torch.nn.Linear.weight
       (layout="CD"). Either is read in place, a transposed view too (W.T of a C-contiguous float32
       array is not copied); grad_W comes back in W's layout and shape.
    b: (C,), or None for no bias (grad_b is then None).
    y: (N,) integer labels in [0, C) (or equal to ignore_index).
    rows: optional integer indices selecting the batch from X and y (a shuffled minibatch without a
       copy); the batch is then len(rows) rows, and grad_X follows the order of rows.
    reduction: "mean" (the chapter's, and the default), "sum", or "none" (per-row losses; the
       gradients are then those of their sum).
    grad_input: also return d loss / d X.
    grad_weight: return d loss / d W and d loss / d b (the default); False skips them (grad_W and
       grad_b are then None), which leaves the tiled kernel one GEMM instead of three.
    ignore_index: rows whose label equals it contribute no loss and no gradient, and are not counted
       in `correct`; the mean divides by the rows that are not ignored (NaN if there are none, with
       zero gradients), as PyTorch. It may be any integer: a value in [0, C) makes that class's rows
       ignored (PyTorch's rule), while the class still takes part in every softmax. None (the
       default) ignores nothing; PyTorch's default is -100.
    label_smoothing: eps in [0, 1], PyTorch's definition: the target is (1 - eps) onehot(y) + eps / C,
       i.e. loss_i = lse_i - (1 - eps) z[i, y_i] - (eps / C) sum_c z[i, c].
    class_weight: optional (C,) weights, PyTorch's `weight`: row i's loss becomes
       (1 - eps) w[y_i] (lse_i - z[i, y_i]) + (eps / C) sum_c w[c] (lse_i - z[i, c]), and "mean"
       divides by the sum of w[y_i] over the rows not ignored (NaN when it is 0), exactly as
       F.cross_entropy(..., weight=w). Weights must be finite and >= 0.
    z_loss: the coefficient of lse_i^2 added to each row's loss (PaLM's z-loss), with its gradient; not
       scaled by class weights, and "mean" averages it over the rows not ignored (Liger Kernel's
       convention). result.z_loss holds the reduced term on its own.
    softcap: None (the default) or a cap s > 0: the logits become s tanh(z / s) before the softmax
       (Gemma 2's soft cap), and the gradients go through the cap; lse, correct and the loss are
       those of the capped logits.
    return_lse: also return the per-row log-sum-exp of the logits (result.lse).
    return_predictions: also return the per-row predicted class (result.predicted), whether each
       row is right (result.row_correct) and the token accuracy over the rows not ignored
       (result.accuracy).
    row_weights: optional (B,) weights w_i: the gradients become those of sum_i w_i loss_i (divided by
       the counted rows for "mean"); the losses are unchanged. The backward of reduction="none" under
       an upstream gradient (csoftmax.torch uses it).
    kernel: "auto" (the default) picks the single-pass kernel for C <= SMALL_C_MAX when none of
       ignore_index, label_smoothing, return_lse, row_weights, class_weight, z_loss, softcap or b=None is
       used, and the tiled large-vocabulary kernel otherwise; "single_pass" or "tiled" force one (for
       tests and benchmarks).

    The tiled kernel never holds the B x C logits: it works on chunks of rows whose logits fit in a
    fixed budget (csoftmax._core.tiled_plan(B, C, D) shows the cut), with results that do not depend
    on the thread count.

    Returns a LinearCrossEntropyResult(loss, grad_W, grad_b, grad_X, correct, lse).
    """
    check_reduction(reduction)
    if kernel not in KERNELS:
        raise ValueError(f"kernel: must be one of {KERNELS}, got {kernel!r}")
    ignore = _as_ignore_index(ignore_index)
    eps = _as_smoothing(label_smoothing)
    z_coefficient = _as_coefficient(z_loss, "z_loss")
    cap = 0.0 if softcap is None else _as_coefficient(softcap, "softcap")
    if softcap is not None and cap == 0.0:
        raise ValueError("softcap: must be > 0 (None for no cap), got 0")
    Xa, rows = _as_features(X), _as_rows(rows)
    Wa, array_layout = _as_weights(W, layout)
    _check_weight_shape(Wa if array_layout == layout else Wa.T, layout, Xa.shape[1])
    ba = None if b is None else _as_float32(b, "b", 1)
    labels = _as_labels(y, "y")
    C = Wa.shape[0 if array_layout == "CD" else 1]
    # what only the tiled kernel supports (b=None the single-pass one takes as zeros, when forced)
    tiled_only = (ignore is not None or eps != 0.0 or return_lse or return_predictions or row_weights is not None
                  or class_weight is not None or z_coefficient != 0.0 or cap != 0.0)
    if kernel == "auto":
        kernel = "single_pass" if not tiled_only and ba is not None and C <= SMALL_C_MAX else "tiled"

    if kernel == "single_pass":
        if tiled_only:
            raise ValueError("kernel='single_pass' supports none of ignore_index, label_smoothing, return_lse, "
                             "return_predictions, row_weights, class_weight, z_loss, softcap")
        batch = len(Xa) if rows is None else len(rows)
        loss_sum, correct, row_loss, grad_W, grad_b, grad_X = _core.linear_cross_entropy(
            Xa, Wa, np.zeros(C, np.float32) if ba is None else ba, labels, rows=rows, x_scale=_as_scale(x_scale),
            grad_scale=1.0 / max(batch, 1) if reduction == "mean" else 1.0, row_losses=reduction == "none",
            grad_input=bool(grad_input), layout=array_layout)
        counted, lse = batch, None
        weight_sum, z_loss_sum, row_z_loss, predicted, row_correct = float(counted), 0.0, None, None, None
        if ba is None:
            grad_b = None
    else:
        (loss_sum, counted, weight_sum, correct, row_loss, lse, grad_W, grad_b, grad_X, z_loss_sum, row_z_loss,
         predicted, row_correct) = _core.tiled_linear_cross_entropy(
            Xa, Wa, ba, labels, rows=rows, x_scale=_as_scale(x_scale), mean=reduction == "mean", label_smoothing=eps,
            ignore_index=ignore,
            row_weights=None if row_weights is None else _as_float32(row_weights, "row_weights", 1),
            class_weight=None if class_weight is None else _as_float32(class_weight, "class_weight", 1),
            z_loss=z_coefficient, softcap=cap, layout=array_layout, want_lse=bool(return_lse),
            want_predictions=bool(return_predictions),
            grad_weight=bool(grad_weight), grad_input=bool(grad_input))
    loss = reduce_loss(row_loss, reduction, total=loss_sum, counted=weight_sum)
    z_term = None
    if row_z_loss is not None:
        z_term = reduce_loss(row_z_loss, reduction, total=z_loss_sum, counted=counted)
        if reduction != "none":
            loss += z_term
    if not grad_weight:
        grad_W = grad_b = None
    if array_layout != layout and grad_W is not None:
        grad_W = grad_W.T
    return LinearCrossEntropyResult(loss=loss, grad_W=grad_W, grad_b=grad_b, grad_X=grad_X, correct=correct,
                                    lse=lse, z_loss=z_term, predicted=predicted,
                                    row_correct=None if row_correct is None else row_correct.view(bool),
                                    accuracy=(correct / counted if counted else math.nan) if return_predictions else None)


# --- the LogisticRegression estimator's full-batch kernels --------------------------------------------
# Called once per optimizer evaluation over all of X, so X is never copied: it must already be
# float32, float64 or uint8 in C or F order (the estimator converts it once per fit).

_DESIGN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8))


def _as_design_matrix(X):
    """X (n, d) exactly as given: float32, float64 or uint8, C- or F-contiguous, n, d >= 1."""
    a = _as_array(X, "X")
    if a.dtype not in _DESIGN_DTYPES:
        raise TypeError(f"X: expected dtype float32, float64 or uint8 (native byte order), got {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"X: expected 2 dimensions (samples, features), got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"X: expected at least one sample and one feature, got shape {a.shape}")
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError("X: expected a C- or F-contiguous array; this kernel reads X in place and never copies "
                         "it (convert it once, e.g. with np.ascontiguousarray)")
    if not a.flags.aligned:  # e.g. a block Dask unpickled into an odd offset: one copy, the kernel needs aligned loads
        a = np.require(a, requirements=["A", "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"])
    return a


def _as_finite_float64(value, name, shape):
    """A finite C-contiguous float64 array of exactly `shape` (a copy only when the dtype or order differ)."""
    a = _as_float_array(value, name, len(shape))
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    a = _contiguous(a, np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return a


def _as_parameters(coef, intercept, d, names=("coef", "intercept")):
    """(coef (K', d), intercept (K',) or None) as finite float64 arrays."""
    c = _as_array(coef, names[0])
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] != d:
        raise ValueError(f"{names[0]}: expected shape (n_classes or 1, {d}) for X with {d} features, got {c.shape}")
    c = _as_finite_float64(c, names[0], c.shape)
    b = None if intercept is None else _as_finite_float64(intercept, names[1], (c.shape[0],))
    return c, b


def _as_sample_weight(sample_weight, n):
    return None if sample_weight is None else _as_finite_float64(sample_weight, "sample_weight", (n,))


def _as_class_codes(y, n, classes):
    """y (n,) of integer codes in [0, classes): int32 and int64 are read in place, other integers converted."""
    a = _as_array(y, "y")
    if a.dtype.kind not in "iu":
        raise TypeError(f"y: expected integer class codes, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"y: expected shape ({n},) to match X, got {a.shape}")
    bad = (a < 0) | (a >= classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"y: label {a[i]} at position {i} is outside [0, {classes})"
                         + (" (one coef row: the binomial loss, labels 0 and 1)" if classes == 2 else ""))
    if a.dtype not in (np.dtype(np.int32), np.dtype(np.int64)) or not a.flags.c_contiguous or not a.flags.aligned:
        a = _contiguous(a, np.int64)
    return a


def logistic_loss_gradient(X, y, sample_weight, coef, intercept, *, x_scale=1.0):
    """scikit-learn's LogisticRegression loss summed over all rows, and its gradient, in one pass over X.

    z = x_scale * X @ coef.T + intercept. With K >= 2 rows of coef, the multinomial loss
    lse(z_i) - z[i, y_i]; with one row, the binomial loss log(1 + exp(z_i)) - y_i z_i (y in {0, 1}).

    X: (n, d) float32, float64 or uint8, C- or F-contiguous, read in place (never copied).
    y: (n,) integer class codes in [0, K) (0/1 for one coef row).
    sample_weight: (n,) weights w_i (class weights multiplied in), or None for ones.
    coef: (K, d) or (1, d); intercept: (K,) or None (no intercept).
    Returns (sum_i w_i loss_i, d/dcoef (K, d), d/dintercept (K,) or None), all float64: no penalty and
    no division by sum(w). Computed in float64 (logits included), bit-identical for any thread count,
    with memory beyond X and the parameters O(K d).
    """
    Xa = _as_design_matrix(X)
    coef, intercept = _as_parameters(coef, intercept, Xa.shape[1])
    y = _as_class_codes(y, Xa.shape[0], max(coef.shape[0], 2))
    weights = _as_sample_weight(sample_weight, Xa.shape[0])
    return _core.logistic_loss_gradient(Xa, y, weights, coef, intercept, _as_scale(x_scale))


def logistic_hessian_product(X, sample_weight, coef, intercept, V, V_intercept, *, x_scale=1.0):
    """The Hessian of logistic_loss_gradient's loss sum at (coef, intercept) times (V, V_intercept).

    One pass over X (the same inputs as logistic_loss_gradient; the labels do not enter). V has coef's
    shape; V_intercept is given exactly when intercept is. Returns (HV (K, d), HV_intercept (K,) or
    None), float64, without the penalty's V / C.
    """
    Xa = _as_design_matrix(X)
    coef, intercept = _as_parameters(coef, intercept, Xa.shape[1])
    V, V_intercept = _as_parameters(V, V_intercept, Xa.shape[1], names=("V", "V_intercept"))
    if V.shape != coef.shape:
        raise ValueError(f"V: expected coef's shape {coef.shape}, got {V.shape}")
    if (intercept is None) != (V_intercept is None):
        raise ValueError("V_intercept: must be given exactly when intercept is (None without an intercept)")
    weights = _as_sample_weight(sample_weight, Xa.shape[0])
    return _core.logistic_hessian_product(Xa, weights, coef, intercept, V, V_intercept, _as_scale(x_scale))
