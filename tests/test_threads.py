"""Results are bit-identical whatever the thread count: blocks depend on the shape, sums on block order."""

import concurrent.futures
import itertools
import os
import subprocess
import sys
import threading

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
    loss_sum, correct = _core.sgd_epoch(X, y.astype(np.int64), order, batch_size=B, lr=0.1, x_scale=x_scale, wt=wt,
                                        bias=bias)
    return [step.loss, step.grad_W, step.grad_b, step.grad_X, step.correct, probs, wt, bias, loss_sum, correct]


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
# every shape has enough work (>= 2^20 multiply-adds per batch) for the kernels to use threads
@pytest.mark.parametrize("B, D, C", [(256, 784, 10), (1000, 100, 17), (4096, 64, 5), (130, 100, 100)])
def test_any_thread_count_gives_identical_results(B, D, C, dtype, restore_threads):
    """1 thread against 2, 3 and 4: odd counts split the blocks unevenly."""
    assert B * D * C >= 1 << 20  # worth_threads (src_cpp/csoftmax/parallel/threads.hpp): else all use one thread
    csoftmax.set_num_threads(1)
    assert csoftmax.get_num_threads() == 1
    single = run_all(B, D, C, dtype)
    for threads in (2, 3, 4):
        csoftmax.set_num_threads(threads)
        assert csoftmax.get_num_threads() == threads
        for i, (a, b) in enumerate(zip(single, run_all(B, D, C, dtype))):
            np.testing.assert_array_equal(a, b, err_msg=f"output {i}, {threads} threads")


def test_thread_setting_is_validated(restore_threads):
    with pytest.raises(ValueError):
        csoftmax.set_num_threads(-1)
    with pytest.raises(TypeError):
        csoftmax.set_num_threads(1.5)
    csoftmax.set_num_threads(0)
    assert csoftmax.get_num_threads() == csoftmax.build_info()["available_threads"]


def test_absurd_thread_counts_are_refused(restore_threads):
    limit = csoftmax.build_info()["max_threads"]
    assert limit >= 64
    for n in (limit + 1, 10**9, 2**70):
        with pytest.raises(ValueError, match=f"set_num_threads: .*no larger than {limit}"):
            csoftmax.set_num_threads(n)
    with pytest.raises(ValueError, match="at most"):
        _core.set_num_threads(n=10**9)  # the extension refuses it on its own too
    assert csoftmax.get_num_threads() == csoftmax.build_info()["available_threads"]  # nothing was changed
    csoftmax.set_num_threads(limit)
    assert csoftmax.get_num_threads() == limit


def test_peak_probe_counts_the_threads_that_ran(tmp_path):
    """A serial build runs one thread whatever is asked; so does OpenMP under OMP_THREAD_LIMIT=1."""
    flops, ran = _core.peak_fma_flops(threads=3, iterations=1000, repeats=1)
    assert flops > 0
    assert ran == (3 if csoftmax.build_info()["openmp"] else 1)
    code = "from csoftmax import _core; print(_core.peak_fma_flops(threads=3, iterations=1000, repeats=1)[1])"
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         cwd=tmp_path)  # not the source tree
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_more_threads_asked_than_granted_gives_the_same_results(tmp_path):
    """Scratch follows the threads OpenMP grants (here 1 of 64 asked): the results do not change."""
    code = """
import numpy as np, csoftmax
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 40)).astype(np.float32)
W = rng.standard_normal((40, 700)).astype(np.float32)
b = np.zeros(700, np.float32)
y = rng.integers(0, 700, 300)
csoftmax.set_num_threads(64)
r = csoftmax.linear_cross_entropy(X, W, b, y, grad_input=True)
np.save("{out}", np.concatenate([[r.loss], r.grad_W.ravel(), r.grad_X.ravel()]))
"""
    results = []
    for limit in ("1", None):
        out = tmp_path / f"limit-{limit}.npy"
        env = dict(os.environ)
        if limit:
            env["OMP_THREAD_LIMIT"] = limit
        run = subprocess.run([sys.executable, "-c", code.format(out=out)], capture_output=True, text=True, env=env,
                             timeout=120, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        results.append(np.load(out))
    np.testing.assert_array_equal(results[0], results[1])


def test_concurrent_calls_from_python_threads_equal_serial_calls(restore_threads):
    """The GIL is released in the kernels: callers in several Python threads, one of them changing the
    thread count meanwhile, get exactly what serial calls get."""
    problems = [make_problem(300, 50, C, np.uint8, seed=seed, rows=True) for seed, C in enumerate((10, 300, 7, 500))]

    def call(problem):
        X, W, b, y, x_scale, rows = problem
        r = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True)
        return [r.loss, r.grad_W, r.grad_b, r.grad_X, r.correct]

    serial = [call(p) for p in problems]
    stop = threading.Event()

    def churn():
        counts = itertools.cycle((1, 2, 3, 0))
        while not stop.is_set():
            csoftmax.set_num_threads(next(counts))

    changer = threading.Thread(target=churn)
    changer.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            concurrent_results = list(pool.map(call, problems * 3))
    finally:
        stop.set()
        changer.join()
    for i, got in enumerate(concurrent_results):
        for a, b in zip(got, serial[i % len(problems)]):
            np.testing.assert_array_equal(a, b)
