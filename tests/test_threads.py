"""Results are bit-identical whatever the thread count and whoever calls: blocks depend on the shape only,
partial sums are combined in block order, and no call shares state with another.

Every kernel that uses threads is run with 1, 2, 3 and 4 of them (odd counts leave the last thread a short
share of the blocks) and from several Python threads at once (the kernels release the GIL).
"""

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
from csoftmax.data import BatchIterator

THREAD_COUNTS = [1, 2, 3, 4]

# Each shape has enough work (>= 2^20 multiply-adds per batch) for the kernels to use threads
# (worth_threads in src_cpp/csoftmax/parallel/threads.hpp), and several blocks to share out: the single-pass
# kernel cuts a batch into blocks of 128 rows (2, 5, 8 and 32 of them here), the forward into tiles of
# 16 rows.
SMALL_C_SHAPES = [(256, 784, 10), (600, 200, 10), (1000, 100, 17), (4096, 64, 5), (130, 100, 100)]
# The tiled kernel threads every call. 1031 classes are 5 class tiles of 256 dealt into 4 groups; 40
# classes are one tile, so it splits the rows and features instead; the batches are 2 and 3 chunks (of at
# most max_row_block rows: 336 on Zen 5, 672 with a 2 MB L2).
_MAX_ROWS = _core.tuning()["max_row_block"]
TILED_SHAPES = [(2 * _MAX_ROWS + 28, 100, 1031), (_MAX_ROWS + 164, 200, 40)]


def small_c_outputs(B, D, C, dtype, seed=0):
    """What the single-pass kernel, the forward and predict give on one problem."""
    X, W, b, y, x_scale, rows = make_problem(B, D, C, dtype, seed, rows=True)
    step = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True,
                                         kernel="single_pass")
    probs = csoftmax.linear_softmax(X, W, b, x_scale, rows=rows)
    labels = csoftmax.predict(X, W, b, x_scale, rows=rows)
    return [step.loss, step.grad_W, step.grad_b, step.grad_X, step.correct, probs, labels]


def tiled_outputs(B, D, C, dtype, seed=0):
    X, W, b, y, x_scale, rows = make_problem(B, D, C, dtype, seed, rows=True)
    step = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True, return_lse=True,
                                         kernel="tiled")
    return [step.loss, step.grad_W, step.grad_b, step.grad_X, step.correct, step.lse]


def row_outputs(B, C, seed=0):
    """softmax, log_softmax and cross-entropy of a (B, C) array of logits (the rows kernel)."""
    rng = np.random.default_rng([B, C, seed])
    Z = (rng.standard_normal((B, C)) * 10).astype(np.float32)
    y = rng.integers(0, C, size=B)
    return [csoftmax.softmax(Z), csoftmax.log_softmax(Z), csoftmax.cross_entropy(Z, y, reduction="none")]


def sgd_outputs(B, D, C, dtype, seed=0):
    """Two epochs of SGD: minibatches of B over B + 5 rows (a full one, big enough for threads, then a
    short one of 5), with the weights they end with."""
    X, W, b, y, x_scale, _ = make_problem(B, D, C, dtype, seed, rows=True)
    wt, bias = np.ascontiguousarray(W.T), b.copy()
    totals = []
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(len(X)).astype(np.int64)
        totals.append(_core.sgd_epoch(X, y.astype(np.int64), order, B, 0.1, x_scale, wt, bias))
    return [totals, wt, bias]


def model_outputs(B, D, C, dtype):
    """SoftmaxRegression.fit on uint8 images: sgd epochs, then accuracy through predict."""
    X, _, _, y, _, _ = make_problem(B, D, C, np.uint8, rows=True)
    image = {"image_shape": (1, D), "source": "generated"}
    train_iter = BatchIterator(X, y, B, shuffle=True, seed=0, **image)
    model = csoftmax.SoftmaxRegression(D, C, seed=0)
    history = model.fit(train_iter, BatchIterator(X, y, B, shuffle=False, **image), 2, 0.1)
    return [[(m.train_loss, m.train_acc, m.test_acc) for m in history], model.W, model.b]


def assert_same_outputs(got, expected, what):
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: output {i}")


def outputs_per_thread_count(run, *args):
    results = {}
    for threads in THREAD_COUNTS:
        csoftmax.set_num_threads(threads)
        if csoftmax.build_info()["openmp"]:  # a serial build runs one thread whatever is asked
            assert csoftmax.get_num_threads() == threads
        results[threads] = run(*args)
    return results


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])


@DTYPES
@pytest.mark.parametrize("B, D, C", SMALL_C_SHAPES)
@pytest.mark.parametrize("run", [small_c_outputs, sgd_outputs], ids=["single-pass-forward-predict", "sgd-epoch"])
def test_small_c_kernels_give_identical_results_on_1_to_4_threads(run, B, D, C, dtype, restore_threads):
    assert B * D * C >= 1 << 20  # else every run uses one thread and the test compares nothing
    results = outputs_per_thread_count(run, B, D, C, dtype)
    for threads in THREAD_COUNTS[1:]:
        assert_same_outputs(results[threads], results[1], f"{threads} threads")


@DTYPES
@pytest.mark.parametrize("B, D, C", TILED_SHAPES)
def test_tiled_kernel_gives_identical_results_on_1_to_4_threads(B, D, C, dtype, restore_threads):
    plan = _core.tiled_plan(B, C, D)
    assert plan["row_block"] < B or C > plan["class_block"]  # more than one chunk or class tile to share
    results = outputs_per_thread_count(tiled_outputs, B, D, C, dtype)
    for threads in THREAD_COUNTS[1:]:
        assert_same_outputs(results[threads], results[1], f"{threads} threads")


# softmax_rows (src_cpp/csoftmax/linear_forward.hpp) threads arrays of more than 32768 logits, row by row.
@pytest.mark.parametrize("B, C", [(4099, 17), (301, 1000)])
def test_row_kernels_give_identical_results_on_1_to_4_threads(B, C, restore_threads):
    assert B * C > 32768
    results = outputs_per_thread_count(row_outputs, B, C)
    for threads in THREAD_COUNTS[1:]:
        assert_same_outputs(results[threads], results[1], f"{threads} threads")


def test_the_model_trains_identically_on_1_to_4_threads(restore_threads):
    results = outputs_per_thread_count(model_outputs, 600, 200, 10, np.uint8)
    for threads in THREAD_COUNTS[1:]:
        assert_same_outputs(results[threads], results[1], f"{threads} threads")


# The kernels the concurrent callers run, each on three seeds of inputs (the dtype alternates).
CONCURRENT_KERNELS = [(small_c_outputs, (600, 200, 10)), (tiled_outputs, (700, 100, 1031)),
                      (sgd_outputs, (1000, 100, 17)), (small_c_outputs, (256, 784, 10))]
CALLERS = 4


def test_concurrent_callers_get_what_serial_calls_give(restore_threads):
    """4 Python threads x 3 calls each, all different inputs, at once: each gets what the same call made
    alone gives. Inside, each call still runs its own team of kernel threads."""
    csoftmax.set_num_threads(2)
    calls = [(run, shape, (np.float32, np.uint8)[seed % 2], seed) for run, shape in CONCURRENT_KERNELS
             for seed in range(3)]
    serial = [run(*shape, dtype, seed) for run, shape, dtype, seed in calls]

    concurrent = [None] * len(calls)
    errors = []
    start = threading.Barrier(CALLERS)

    def caller(worker):
        try:
            start.wait(timeout=60)
            for i in range(worker, len(calls), CALLERS):  # worker w runs calls w, w + 4, w + 8: mixed kernels
                run, shape, dtype, seed = calls[i]
                concurrent[i] = run(*shape, dtype, seed)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=caller, args=(w,)) for w in range(CALLERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(worker.is_alive() for worker in workers), "a concurrent call did not finish"
    assert not errors, errors
    for i, (got, expected) in enumerate(zip(concurrent, serial, strict=True)):
        assert_same_outputs(got, expected, f"call {i}: {calls[i][0].__name__}{calls[i][1:]}")


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


def test_concurrent_calls_equal_serial_calls_while_the_thread_count_changes(restore_threads):
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


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_timed_epoch_gives_the_epochs_results_and_each_threads_phases(threads, restore_threads):
    """_core.sgd_epoch_phases (benchmarks/bench_step_phases.py) is sgd_epoch with a clock: the same
    totals and weights, and one (blocks, wait, update) per thread of the team that ran."""
    X, W, b, y, x_scale, _ = make_problem(256, 784, 10, np.uint8, rows=True)
    labels, order = y.astype(np.int64), np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    csoftmax.set_num_threads(threads)
    plain_wt, plain_b = np.ascontiguousarray(W.T), b.copy()
    timed_wt, timed_b = plain_wt.copy(), b.copy()
    plain = _core.sgd_epoch(X, labels, order, 256, 0.1, x_scale, plain_wt, plain_b)
    loss_sum, correct, phases = _core.sgd_epoch_phases(X, labels, order, 256, 0.1, x_scale, timed_wt, timed_b)
    assert (loss_sum, correct) == plain
    np.testing.assert_array_equal(timed_wt, plain_wt)
    np.testing.assert_array_equal(timed_b, plain_b)
    assert len(phases) == (threads if csoftmax.build_info()["openmp"] else 1)
    assert all(len(p) == 3 and all(np.isfinite(s) and s >= 0 for s in p) for p in phases)
    assert phases[0][0] > 0 and phases[0][2] > 0  # the first thread always runs a block and an update
