"""Run each kernel once on small inputs and check it against csoftmax.reference; print the variant that
ran and the results as JSON. tests/test_dispatch.py runs this script in a fresh interpreter per forced
variant (CSOFTMAX_ISA) and under valgrind, so it imports nothing but csoftmax, NumPy and tests/helpers.py.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import assert_close, make_problem  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core, ops, reference  # noqa: E402

# The logistic kernels accumulate in float64 as the reference does.
F64_RTOL, F64_ATOL = 1e-11, 1e-12


def softmax_rows():
    Z = (np.random.default_rng(1).standard_normal((9, 13)) * 10).astype(np.float32)
    got = csoftmax.softmax(Z)
    assert_close(got, reference.softmax(Z.astype(np.float64)), "softmax")
    return [got]


def linear_cross_entropy(kernel, C):
    X, W, b, y, x_scale, rows = make_problem(37, 45, C, np.uint8, rows=True)
    got = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True, kernel=kernel)
    ref = reference.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True, dtype=np.float64)
    for name in ("loss", "grad_W", "grad_b", "grad_X"):
        assert_close(getattr(got, name), getattr(ref, name), f"{kernel} {name}")
    assert got.correct == ref.correct, (kernel, got.correct, ref.correct)
    return [got.loss, got.grad_W, got.grad_b, got.grad_X]


def sgd_epoch():
    """Two minibatches of SGD in C++ against the reference's steps, one batch at a time."""
    B, lr = 16, 0.1
    X, W, b, y, x_scale, _ = make_problem(B, 30, 10, np.uint8, rows=True)
    order = np.random.default_rng(2).permutation(len(X)).astype(np.int64)
    wt, bias = np.ascontiguousarray(W.T), b.copy()
    loss_sum, correct = _core.sgd_epoch(X, y.astype(np.int64), order, B, lr, x_scale, wt, bias)
    W_ref, b_ref, loss_ref, correct_ref = W.astype(np.float64), b.astype(np.float64), 0.0, 0
    for start in range(0, len(order), B):
        rows = order[start:start + B]
        step = reference.linear_cross_entropy(X, W_ref, b_ref, y, x_scale=x_scale, rows=rows, dtype=np.float64)
        loss_ref += step.loss * len(rows)
        correct_ref += step.correct
        W_ref, b_ref = W_ref - lr * step.grad_W, b_ref - lr * step.grad_b
    assert_close(loss_sum, loss_ref, "sgd loss_sum")
    assert correct == correct_ref, (correct, correct_ref)
    assert_close(wt.T, W_ref, "sgd W")
    assert_close(bias, b_ref, "sgd b")
    return [loss_sum, wt, bias]


def logistic_loss_gradient():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(41, 19)).astype(np.float32)
    y, w = rng.integers(0, 3, 41), rng.uniform(0.0, 2.0, 41)
    coef, intercept = rng.normal(size=(3, 19)) / 5, rng.normal(size=3)
    got = ops.logistic_loss_gradient(X, y, w, coef, intercept, x_scale=0.7)
    ref = reference.logistic_loss_gradient(X, y, w, coef, intercept, x_scale=0.7)
    for name, a, r in zip(("loss_sum", "grad_coef", "grad_intercept"), got, ref):
        assert_close(a, r, f"logistic {name}", F64_RTOL, F64_ATOL)
    return list(got)


def peak_probe():
    flops, threads = _core.peak_fma_flops(1, iterations=2000, repeats=1)
    assert flops > 0 and threads == 1, (flops, threads)
    return []


def main():
    results = {
        "softmax": softmax_rows(),
        "single_pass": linear_cross_entropy("single_pass", 10),
        "tiled": linear_cross_entropy("tiled", 70),
        "sgd_epoch": sgd_epoch(),
        "logistic": logistic_loss_gradient(),
        "peak_probe": peak_probe(),
    }
    as_lists = {name: [np.asarray(a, dtype=np.float64).tolist() for a in arrays] for name, arrays in results.items()}
    print(json.dumps({"variant": csoftmax.build_info()["variant"], "results": as_lists}))


if __name__ == "__main__":
    main()
