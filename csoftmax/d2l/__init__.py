"""The book's names in one namespace: after `from csoftmax import d2l`, the chapter reads as in the book.

    from csoftmax import d2l

    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    W = d2l.normal(0, 0.01, size=(784, 10), requires_grad=True)
    b = d2l.zeros(10, requires_grad=True)

    def net(X):
        return d2l.softmax(d2l.matmul(X.reshape((-1, W.shape[0])), W) + b)

    def updater(batch_size):
        return d2l.sgd([W, b], 0.1, batch_size)

    d2l.train_ch3(net, train_iter, test_iter, d2l.cross_entropy, 10, updater)
    d2l.predict_ch3(net, test_iter)

Tensors are NumPy arrays (`d2l.tensor`); parameters are `Parameter` arrays with a `.grad`. There is no
autograd: `d2l.cross_entropy(y_hat, y).sum().backward()` computes the gradients of this one model,
softmax(X @ W + b), with the fused kernel `csoftmax.linear_cross_entropy` (see `csoftmax.d2l.traced`).

Here `cross_entropy(y_hat, y)` takes *probabilities*, as the chapter's does; the top-level
`csoftmax.cross_entropy` takes logits, as PyTorch's does. `softmax` is the chapter's, made stable.
Seeding: `manual_seed(s)` then `normal(0, 0.01, size=(784, 10))` gives the W of
`SoftmaxRegression(seed=s)`; with `load_data_fashion_mnist(..., seed=s)` both paths train identically.
"""

import numpy as np

from ..data import get_fashion_mnist_labels, load_data_fashion_mnist
from ..models.metrics import EpochMetrics
from .plot import Animator, predict_ch3, set_axes, show_images
from .traced import Parameter, cross_entropy, manual_seed, matmul, normal, softmax, zeros
from .train import Accumulator, Updater, accuracy, evaluate_accuracy, sgd, train_ch3, train_epoch_ch3

__all__ = [
    "Accumulator",
    "Animator",
    "EpochMetrics",
    "Parameter",
    "Updater",
    "accuracy",
    "argmax",
    "cross_entropy",
    "evaluate_accuracy",
    "exp",
    "get_fashion_mnist_labels",
    "load_data_fashion_mnist",
    "log",
    "manual_seed",
    "matmul",
    "normal",
    "predict_ch3",
    "set_axes",
    "sgd",
    "show_images",
    "softmax",
    "tensor",
    "train_ch3",
    "train_epoch_ch3",
    "zeros",
]


def tensor(data, dtype=None) -> np.ndarray:
    """An array from nested lists (float32 for floats), as torch.tensor."""
    array = np.asarray(data, dtype=dtype)
    return array.astype(np.float32) if dtype is None and array.dtype == np.float64 else array


exp = np.exp
log = np.log
argmax = np.argmax
