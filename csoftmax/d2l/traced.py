"""How the chapter's `l.sum().backward()` works without autograd: arrays that remember one model.

The chapter trains with PyTorch's autograd:

    W = torch.normal(0, 0.01, size=(784, 10), requires_grad=True); b = torch.zeros(10, requires_grad=True)
    y_hat = softmax(torch.matmul(X.reshape((-1, 784)), W) + b)
    l = cross_entropy(y_hat, y)          # -log y_hat[range(n), y]
    l.sum().backward()                   # fills W.grad and b.grad
    sgd([W, b], lr, batch_size)          # param -= lr * param.grad / batch_size; grad = 0

csoftmax has no autograd: it has one fused kernel that computes the loss and both gradients of exactly
this model in one pass, `csoftmax.linear_cross_entropy`. So instead of recording any computation, these
arrays recognise the one the chapter writes, step by step:

- `Parameter`: a float32 array with `.grad`, made by `normal(..., requires_grad=True)` / `zeros(...)`;
- `X @ W` (or `matmul(X, W)`) with W a Parameter gives an array that remembers (X, W);
- adding a Parameter b of one value per column gives one that remembers (X, W, b): the logits;
- `softmax` of those gives probabilities that also keep the logits;
- `cross_entropy(y_hat, y)` of those gives per-example losses computed from the logits
  (log-sum-exp; never the log of a probability, which is -inf once it underflows) that remember
  (X, W, b, y);
- `l.sum().backward()` (or `l.mean().backward()`) runs `linear_cross_entropy` on (X, W, b, y) and adds
  its gradients into `W.grad` and `b.grad`, as autograd accumulates them.

W and b are copied when the product is formed (a 784 x 10 matrix, nothing next to the batch), so the
gradient is the one at the values the forward pass used, whatever happens to the parameters in between.
Any other computation gives plain NumPy results; a loss that did not come from
`cross_entropy(softmax(X @ W + b), y)` still has `.sum().backward()`, which raises an error saying so.
Every other operation (printing, indexing, `argmax`, `float(l.sum())`) is NumPy's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..reference import check_labels

__all__ = [
    "Parameter",
    "cross_entropy",
    "manual_seed",
    "matmul",
    "normal",
    "softmax",
    "zeros",
]

WHAT_IS_DIFFERENTIABLE = (
    "csoftmax.d2l differentiates one model: cross_entropy(softmax(matmul(X, W) + b), y) with W and b "
    "created with requires_grad=True (d2l.normal / d2l.zeros)"
)


# --- what an array remembers ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Product:
    """X @ W."""

    X: np.ndarray
    W: Parameter
    W_values: np.ndarray


@dataclass(frozen=True, eq=False)
class _Logits:
    """X @ W + b."""

    product: _Product
    b: Parameter
    b_values: np.ndarray


@dataclass(frozen=True, eq=False)
class _Probabilities:
    """softmax(X @ W + b), with the logits kept for a stable loss."""

    logits: _Logits
    logit_values: np.ndarray


@dataclass(frozen=True, eq=False)
class _Unsupported:
    """A step of a model other than the chapter's, remembered only to say so."""

    why: str


@dataclass(frozen=True, eq=False)
class _CrossEntropy:
    """cross_entropy(softmax(X @ W + b), y)."""

    logits: _Logits
    y: np.ndarray


def _plain(value):
    return value.view(np.ndarray) if isinstance(value, np.ndarray) else value


class _ChapterArray(np.ndarray):
    """Base of the arrays here: NumPy computes on them as on plain arrays and returns plain arrays,
    except for the steps of the chapter's model (see `_model_step`)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is None and method == "__call__" and not kwargs:
            step = _model_step(ufunc, *inputs)
            if step is not None:
                return step
        if out is not None:
            kwargs["out"] = tuple(_plain(array) for array in out)
        result = getattr(ufunc, method)(*(_plain(value) for value in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if (
            method == "__call__"
            and any(isinstance(value, Loss) for value in inputs)
            and isinstance(result, np.ndarray)
            and result.dtype.kind == "f"
        ):
            # Keep the type so that .sum().backward() explains itself instead of an AttributeError.
            return Loss._not_differentiable(result, f"np.{ufunc.__name__} was applied to it after cross_entropy")
        return result


class Parameter(_ChapterArray):
    """A float32 array with a gradient, like a PyTorch tensor with requires_grad=True.

    `grad` is None until a `backward()` fills it; `backward()` adds to it and `sgd` zeroes it. Views and
    copies of a parameter (W.T, W[0], W.copy()) are plain constants: only the parameter itself learns.
    """

    def __new__(cls, values, requires_grad: bool = True):
        param = np.array(values, dtype=np.float32).view(cls)
        param.requires_grad = bool(requires_grad)
        return param

    def __array_finalize__(self, obj):
        self.requires_grad = False
        self.grad = None

    def _accumulate_grad(self, grad: np.ndarray) -> None:
        if self.grad is None:
            self.grad = np.zeros(self.shape, dtype=np.float32)
        self.grad += grad

    def __repr__(self) -> str:
        body = np.array2string(_plain(self), separator=", ", prefix="Parameter(")
        return f"Parameter({body}, requires_grad={self.requires_grad})"


class Traced(_ChapterArray):
    """An intermediate value of the chapter's model (X @ W, X @ W + b, softmax of it) that knows where it
    came from. Its slices and copies forget it."""

    def __array_finalize__(self, obj):
        self.origin = None


class Loss(_ChapterArray):
    """Per-example losses from `cross_entropy`. `l.sum()` and `l.mean()` give a `LossTotal` with
    `backward()`; any other reduction gives a plain number."""

    def __array_finalize__(self, obj):
        self.origin = None
        self.not_differentiable_because = "it is a slice or copy of a loss"

    @classmethod
    def _not_differentiable(cls, values, because: str) -> Loss:
        loss = np.asarray(values).view(cls)
        loss.not_differentiable_because = because
        return loss

    def _total(self, reduction: str, kwargs) -> LossTotal:
        values = _plain(self)
        total = values.sum(**kwargs) if reduction == "sum" else values.mean(**kwargs)
        if kwargs.get("axis") is not None or np.ndim(total) != 0:
            return total
        result = np.asarray(total, dtype=values.dtype).view(LossTotal)
        result._loss, result._reduction = self, reduction
        return result

    def sum(self, *args, **kwargs):
        return self._total("sum", dict(zip(("axis", "dtype", "out", "keepdims"), args), **kwargs))

    def mean(self, *args, **kwargs):
        return self._total("mean", dict(zip(("axis", "dtype", "out", "keepdims"), args), **kwargs))

    def backward(self):
        raise RuntimeError("backward() needs a single number: call l.sum().backward() (or l.mean().backward())")


class LossTotal(_ChapterArray):
    """The sum or mean of a `Loss`: a 0-d array (`float()` works) with `backward()`."""

    def __array_finalize__(self, obj):
        self._loss = None
        self._reduction = "sum"

    def backward(self) -> None:
        """Add d(this)/dW and d(this)/db into W.grad and b.grad, from one call of the fused kernel."""
        loss = self._loss
        origin = None if loss is None else loss.origin
        if origin is None:
            because = "it is not the sum or mean of a loss" if loss is None else loss.not_differentiable_because
            raise RuntimeError(f"cannot differentiate this loss: {because}. {WHAT_IS_DIFFERENTIABLE}.")
        logits, product = origin.logits, origin.logits.product
        step = ops.linear_cross_entropy(
            product.X, product.W_values, logits.b_values, origin.y, reduction=self._reduction
        )
        product.W._accumulate_grad(step.grad_W)
        logits.b._accumulate_grad(step.grad_b)


def _traced(values, origin) -> Traced:
    array = np.asarray(values).view(Traced)
    array.origin = origin
    return array


def _is_learning(value, ndim) -> bool:
    return isinstance(value, Parameter) and value.requires_grad and value.ndim == ndim


def _model_step(ufunc, *inputs):
    """The traced result when `ufunc(*inputs)` is X @ W or (X @ W) + b of the chapter's model, else None."""
    if ufunc is np.matmul and len(inputs) == 2:
        X, W = inputs
        if _is_learning(W, 2) and not isinstance(X, _ChapterArray) and np.ndim(X) == 2:
            X = np.asarray(X)
            if X.dtype.kind == "f":
                W_values = _plain(W).copy()
                return _traced(X @ W_values, _Product(X, W, W_values))
    if ufunc is np.add and len(inputs) == 2:
        for product, b in (inputs, inputs[::-1]):
            if (
                isinstance(product, Traced)
                and isinstance(product.origin, _Product)
                and _is_learning(b, 1)
                and b.shape[0] == product.shape[1]
            ):
                b_values = _plain(b).copy()
                return _traced(_plain(product) + b_values, _Logits(product.origin, b, b_values))
    return None


# --- the chapter's functions -------------------------------------------------------------------------------


def matmul(X, W):
    """X @ W, as torch.matmul; with W a Parameter the result remembers (X, W) for backward()."""
    return np.matmul(X, W)


def softmax(X):
    """The chapter's softmax of each row: exp(x) / sum exp(x), computed stably (the row maximum is
    subtracted first, so large logits do not overflow; exercise 1).

    Of logits X @ W + b, the result remembers them for `cross_entropy` and `backward()`.
    """
    values = ops.softmax(_plain(X))
    origin = getattr(X, "origin", None)
    if isinstance(origin, _Logits):
        return _traced(values, _Probabilities(origin, _plain(X)))
    if isinstance(origin, _Product):
        return _traced(values, _Unsupported("y_hat is the softmax of matmul(X, W) without the bias b"))
    return values


def cross_entropy(y_hat, y):
    """The chapter's cross-entropy: -log y_hat[i, y_i] per example, from *probabilities* y_hat.

    (`csoftmax.cross_entropy` takes logits instead, as PyTorch's does.) When y_hat is softmax(X @ W + b)
    of the chapter's model, the loss is computed from the logits as logsumexp(z) - z[y], which is finite
    even where the probability underflows to 0 (exercise 2), and `l.sum().backward()` works. Otherwise it
    is -log of the probabilities, as the chapter writes it: inf where a probability is 0.
    """
    labels = np.asarray(y)
    origin = getattr(y_hat, "origin", None)
    if isinstance(origin, _Probabilities):
        row_loss = ops.cross_entropy(origin.logit_values, labels, reduction="none")
        loss = row_loss.view(Loss)
        loss.origin = _CrossEntropy(origin.logits, labels)
        return loss
    probabilities = _plain(np.asarray(y_hat))
    if probabilities.ndim != 2 or labels.shape != probabilities.shape[:1]:
        raise ValueError(
            f"cross_entropy: expected y_hat (n, classes) and y (n,), got shapes {probabilities.shape} and {labels.shape}"
        )
    check_labels(labels, probabilities.shape[1])  # NumPy would read -1 as the last class
    if isinstance(origin, _Unsupported):
        because = origin.why
    elif isinstance(origin, (_Product, _Logits)):
        because = "y_hat is matmul(X, W) (+ b) itself: take its softmax first"
    else:
        because = "y_hat was not computed as softmax(matmul(X, W) + b) from csoftmax.d2l"
    return Loss._not_differentiable(-np.log(probabilities[np.arange(len(labels)), labels]), because)


# --- creating parameters, as torch.normal / torch.zeros ---------------------------------------------------

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator `normal` draws from, as torch.manual_seed.

    The convention shared with the fast path: after manual_seed(s), normal(0, 0.01, size=(784, 10)) is
    the W of SoftmaxRegression(seed=s), so both start from the same weights.
    """
    global _generator
    _generator = np.random.default_rng(seed)


def normal(mean: float, std: float, size, requires_grad: bool = False):
    """Samples of N(mean, std²) in float32, as torch.normal; a Parameter with requires_grad=True."""
    values = _generator.normal(mean, std, size=size).astype(np.float32)
    return Parameter(values) if requires_grad else values


def zeros(*size, requires_grad: bool = False):
    """Zeros in float32, as torch.zeros; a Parameter with requires_grad=True."""
    shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    values = np.zeros(shape, dtype=np.float32)
    return Parameter(values) if requires_grad else values
