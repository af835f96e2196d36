"""Results are bit-identical whatever the thread count: blocks depend on the shape, sums on block order."""

import numpy as np
import pytest
from helpers import make_problem

import csoftmax
from csoftmax import _core


def run_all(B, D, C, dtype):
    X, W, b, y, x_scale, rows = make_problem(B, D, C, dtype, rows=True)
    step = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True)
    probs = csoftmax.linear_softmax(X, W, b, x_scale, rows=rows)
    wt, bias = np.ascontiguousarray(W.T), b.copy()
    # batches of B over the B + 5 rows: a full batch (big enough for threads), then a short one of 5
    assert len(X) == B + 5
    order = np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    loss_sum, correct = _core.sgd_epoch(X, y.astype(np.int64), order, B, 0.1, x_scale, wt, bias)
    return [step.loss, step.grad_W, step.grad_b, step.grad_X, step.correct, probs, wt, bias, loss_sum, correct]


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
# every shape has enough work (>= 2^20 multiply-adds per batch) for the kernels to use threads
@pytest.mark.parametrize("B, D, C", [(256, 784, 10), (1000, 100, 17), (4096, 64, 5), (130, 100, 100)])
def test_one_and_two_threads_give_identical_results(B, D, C, dtype, restore_threads):
    assert B * D * C >= 1 << 20  # worth_threads (src_cpp/csoftmax/threads.hpp): else both runs use one thread
    csoftmax.set_num_threads(1)
    assert csoftmax.get_num_threads() == 1
    single = run_all(B, D, C, dtype)
    csoftmax.set_num_threads(2)
    assert csoftmax.get_num_threads() == 2
    double = run_all(B, D, C, dtype)
    for i, (a, b) in enumerate(zip(single, double)):
        np.testing.assert_array_equal(a, b, err_msg=f"output {i}")


def test_thread_setting_is_validated(restore_threads):
    with pytest.raises(ValueError):
        csoftmax.set_num_threads(-1)
    with pytest.raises(TypeError):
        csoftmax.set_num_threads(1.5)
    csoftmax.set_num_threads(0)
    assert csoftmax.get_num_threads() == csoftmax.build_info()["available_threads"]
