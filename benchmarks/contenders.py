"""What csoftmax is timed against: the same work written the way NumPy and PyTorch users write it.

Every contender starts from the same inputs (the uint8 images as the dataset holds them, or float32
arrays for the float cases) and does its own conversion inside the timed region, as a user would.
"""

from __future__ import annotations

import time

import numpy as np

from csoftmax import reference

try:  # PyTorch is optional: the benchmark notes its absence and goes on
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
    F = None


def torch_available() -> bool:
    return torch is not None


# --- one fused step: linear + softmax + cross-entropy, forward and backward ----------------------------


def numpy_step(X, W, b, y, x_scale):
    """The NumPy reference (float32): what `--backend numpy` computes for each minibatch."""
    step = reference.linear_cross_entropy(X, W, b, y, x_scale=x_scale)
    return step.loss, step.grad_W, step.grad_b


def make_torch_step(X, W, b, y, x_scale):
    """F.linear + F.cross_entropy + backward on CPU tensors built once from the same arrays."""
    X_t = torch.from_numpy(np.ascontiguousarray(X))
    W_t = torch.from_numpy(np.ascontiguousarray(W.T)).requires_grad_()  # nn.Linear's (C, D) layout
    b_t = torch.from_numpy(b.copy()).requires_grad_()
    y_t = torch.from_numpy(y.astype(np.int64))

    def step():
        W_t.grad = None
        b_t.grad = None
        inputs = X_t.float() * x_scale if X_t.dtype == torch.uint8 else X_t
        loss = F.cross_entropy(F.linear(inputs, W_t, b_t), y_t)
        loss.backward()
        return loss.item(), W_t.grad.numpy().T, b_t.grad.numpy()

    return step


# --- evaluation: predicted labels of the whole test set ----------------------------------------------


def numpy_predict(images, W, b, x_scale):
    return reference.predict(images, W, b, x_scale=x_scale)


def make_torch_predict(images, W, b, x_scale):
    images_t = torch.from_numpy(images)
    W_t, b_t = torch.from_numpy(np.ascontiguousarray(W)), torch.from_numpy(b)

    def predict():
        with torch.no_grad():
            return torch.addmm(b_t, images_t.float() * x_scale, W_t).argmax(dim=1).numpy()

    return predict


# --- the recipe in PyTorch eager ---------------------------------------------------------------------


def torch_recipe(train_iter, test_iter, W0, epochs, lr):
    """The chapter's recipe in PyTorch eager on in-memory tensors: same initial W, same shuffles.

    The images are converted to float32 tensors once, before the clock starts (in memory, as a
    TensorDataset would hold them); each epoch's order is drawn inside the loop from the same
    iterator as csoftmax's (so the shuffles, and their cost, are the same). Returns (per-epoch
    metrics, seconds of the training loop).
    """
    X_train = torch.from_numpy(train_iter.images).float().mul_(train_iter.x_scale)
    y_train = torch.from_numpy(train_iter.labels)
    X_test = torch.from_numpy(test_iter.images).float().mul_(test_iter.x_scale)
    y_test = torch.from_numpy(test_iter.labels)
    W = torch.from_numpy(W0.copy()).requires_grad_()
    b = torch.zeros(W0.shape[1], requires_grad=True)
    batch_size = train_iter.batch_size
    history = []
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(train_iter.next_epoch_order())
        loss_sum, correct = 0.0, 0
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            X, y = X_train[rows], y_train[rows]
            logits = X @ W + b
            loss = F.cross_entropy(logits, y, reduction="sum")
            loss.backward()
            with torch.no_grad():
                W -= lr * W.grad / len(rows)
                b -= lr * b.grad / len(rows)
                W.grad = None
                b.grad = None
                loss_sum += loss.item()
                correct += int((logits.argmax(dim=1) == y).sum())
        with torch.no_grad():
            test_acc = float((torch.addmm(b, X_test, W).argmax(dim=1) == y_test).float().mean())
        history.append({"train_loss": loss_sum / len(order), "train_acc": correct / len(order), "test_acc": test_acc})
    return history, time.perf_counter() - start


# --- the recipe as a plain NumPy loop ------------------------------------------------------------------


def numpy_loop_recipe(train_iter, test_iter, W0, epochs, lr):
    """The chapter's recipe as a user writes it in NumPy, without the backend's checks: float32 images
    converted once before the clock (as torch_recipe's tensors), the same initial W and shuffles, one
    stable softmax + cross-entropy + SGD update per minibatch. Returns (per-epoch metrics, seconds)."""
    X_train = train_iter.images.astype(np.float32) * np.float32(train_iter.x_scale)
    X_test = test_iter.images.astype(np.float32) * np.float32(test_iter.x_scale)
    W, b = W0.astype(np.float32, copy=True), np.zeros(W0.shape[1], dtype=np.float32)
    batch_size = train_iter.batch_size
    history = []
    start = time.perf_counter()
    for _ in range(epochs):
        order = train_iter.next_epoch_order()
        loss_sum, correct = 0.0, 0
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            X, y = X_train[rows], train_iter.labels[rows]
            n = len(rows)
            shifted = X @ W + b
            shifted -= shifted.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            loss_sum += float(np.sum(np.log(total[:, 0]) - shifted[np.arange(n), y]))
            correct += int(np.count_nonzero(shifted.argmax(axis=1) == y))
            G = exp / total
            G[np.arange(n), y] -= 1
            W -= np.float32(lr / n) * (X.T @ G)
            b -= np.float32(lr / n) * G.sum(axis=0)
        test_acc = float(np.mean((X_test @ W + b).argmax(axis=1) == test_iter.labels))
        history.append({"train_loss": loss_sum / len(order), "train_acc": correct / len(order), "test_acc": test_acc})
    return history, time.perf_counter() - start
