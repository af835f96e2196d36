"""The integer argmax of uint8 rows (kernels/vnni_argmax.hpp): used where the machine runs AVX512-VNNI and
off with CSOFTMAX_VNNI=0; every label it proves is the exact argmax (the float64 reference's), whatever
the weights; rows it cannot prove (near-ties, equal classes) get the float32 forward's label; nearly
every row of the real test set is proven with the chapter's trained weights.

On a machine without VNNI the tests of predict still run, on the float32 forward.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from training_helpers import full_data, iterators

import csoftmax
from csoftmax import _core, _isa, reference
from csoftmax.models.recipe import train_recipe

INFO = csoftmax.build_info()
NEEDS_VNNI = pytest.mark.skipif(not INFO["vnni"], reason=f"this process does not use VNNI: {INFO['vnni_reason']}")
SCALE = np.float32(1 / 255)


def run_child(code, setting):
    env = dict(os.environ, CSOFTMAX_VNNI=setting)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tempfile.gettempdir())  # not the source tree


def exact_labels(X, W, b, x_scale):
    return reference.predict(X, W, b, x_scale=x_scale, dtype=np.float64)


def problem(rng, n, d, c, weight_scale=0.01):
    X = rng.integers(0, 256, (n, d), dtype=np.uint8)
    W = (rng.standard_normal((d, c)) * weight_scale).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    return X, W, b


def test_build_info_says_whether_vnni_is_used_and_why():
    flags = _isa.cpu_flags() or set()
    machine_runs_it = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
    variant_has_it = INFO.get("variant") in ("avx512", "native") and INFO["simd"] == "AVX-512"
    setting = os.environ.get("CSOFTMAX_VNNI", "")
    assert INFO["vnni"] == (machine_runs_it and variant_has_it and setting != "0" and not INFO["amx"]), (
        INFO["vnni_reason"])
    assert INFO["vnni_reason"]
    if INFO["amx"]:
        assert INFO["vnni_reason"].startswith("AMX tiles give the labels")


def test_a_bad_setting_is_an_import_error():
    run = run_child("import csoftmax", "yes")
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "ImportError: CSOFTMAX_VNNI=yes: takes 0 (off) or 1 (on where the machine runs it)")


def test_the_setting_turns_it_off():
    run = run_child("import csoftmax; i = csoftmax.build_info(); print(i['vnni'], i['vnni_reason'])", "0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() in ("False off (CSOFTMAX_VNNI=0)",
                                  "False not compiled into this variant (it needs AVX-512 on x86-64)")


@NEEDS_VNNI
@pytest.mark.parametrize("d", [1, 31, 32, 33, 100, 784])
@pytest.mark.parametrize("c", [1, 2, 5, 6, 10, 13, 48])
def test_every_proven_label_is_the_exact_argmax(d, c):
    rng = np.random.default_rng(1000 * d + c)
    X, W, b = problem(rng, 300, d, c)
    proven = _core.vnni_proven_labels(X, W, b, x_scale=SCALE)
    exact = exact_labels(X, W, b, SCALE)
    mine = proven >= 0
    np.testing.assert_array_equal(proven[mine], exact[mine])
    assert mine.mean() > 0.9  # random weights leave wide margins: nearly every row is proven


@NEEDS_VNNI
@pytest.mark.parametrize("weight_scale, x_scale", [(1e30, 1.0), (1e-38, 1.0), (1.0, -1.0), (1e-3, 1e20),
                                                   (1.0, 0.0)])
def test_extreme_weights_and_scales(weight_scale, x_scale):
    rng = np.random.default_rng(7)
    X, W, b = problem(rng, 200, 50, 10, weight_scale)
    b *= np.float32(min(weight_scale, 1.0))
    proven = _core.vnni_proven_labels(X, W, b, x_scale=x_scale)
    exact = exact_labels(X, W, b, np.float32(x_scale))
    mine = proven >= 0
    np.testing.assert_array_equal(proven[mine], exact[mine])
    np.testing.assert_array_equal(csoftmax.predict(X, W, b, x_scale)[mine], exact[mine])


@NEEDS_VNNI
def test_zero_rows_are_the_largest_bias():
    X = np.zeros((64, 784), np.uint8)
    W = np.random.default_rng(2).standard_normal((784, 10)).astype(np.float32)
    b = np.arange(10, dtype=np.float32)[::-1].copy()
    np.testing.assert_array_equal(_core.vnni_proven_labels(X, W, b, x_scale=SCALE), np.zeros(64))


def near_tie_problem(n):
    """Class 1 is class 0 plus 1e-3 on every pixel but the first, where a weight of 100 makes the int16 levels
    of both classes 100 / 8192 apart: the levels cannot tell them apart, float32 easily can (class 1 wins by
    1e-3 * sum(x) / 255). The other classes trail far behind."""
    rng = np.random.default_rng(3)
    X = rng.integers(1, 256, (n, 784), dtype=np.uint8)
    W = np.full((784, 10), -0.01, np.float32)
    W[:, 0] = 0.01
    W[:, 1] = 0.011
    W[0, :2] = 100.0
    return X, W, np.zeros(10, np.float32)


@NEEDS_VNNI
def test_rows_the_levels_cannot_separate_are_not_proven_and_get_the_float32_label():
    X, W, b = near_tie_problem(100)
    exact = exact_labels(X, W, b, SCALE)
    assert (exact == 1).all()
    assert (_core.vnni_proven_labels(X, W, b, x_scale=SCALE) == -1).all()
    np.testing.assert_array_equal(csoftmax.predict(X, W, b, SCALE), exact)


@NEEDS_VNNI
def test_rows_whose_levels_would_mislead_are_not_proven():
    """Rounded to levels of the step s (set by a weight of 100), class 0's weights of 0.51 s become s and
    class 1's of 0.49 s become 0: the integer sums rank class 0 first, by far, where class 1 wins exactly.
    Only the bound stops the levels' answer from being taken."""
    step = 2.0 ** np.ceil(np.log2(100 / 32767))  # the power-of-two step at the largest level, 32767
    W = np.full((201, 10), -1.0, np.float32)
    W[:, :2] = 0
    W[:100, 0] = 0.51 * step
    W[100:200, 1] = 0.49 * step
    W[200, :2] = 100.0
    X = np.zeros((64, 201), np.uint8)
    X[:, :100], X[:, 100:200] = 100, 120  # class 0: 0.51 s * 100 * 100 = 5100 s; class 1: 5880 s
    b = np.zeros(10, np.float32)
    np.testing.assert_array_equal(exact_labels(X, W, b, 1.0), np.ones(64))
    np.testing.assert_array_equal(_core.vnni_proven_labels(X, W, b), -np.ones(64))
    np.testing.assert_array_equal(csoftmax.predict(X, W, b), np.ones(64))


def mixed_problem(n, seed):
    """near_tie_problem's weights, plus class 2 lit by pixels 400 and on: rows with those pixels dark are
    near-ties of classes 0 and 1 that the levels cannot prove; rows with them bright are class 2's by a
    margin the levels prove. The first pixel is dark, so class 0 and 1's weight of 100 adds nothing."""
    rng = np.random.default_rng(seed)
    X, W, b = near_tie_problem(n)
    W[400:, 2] = 0.05
    X[:, 0] = 0
    tie = rng.random(n) < 0.4
    X[tie, 400:] = 0
    X[~tie, 400:] = rng.integers(128, 256, ((~tie).sum(), 384), dtype=np.uint8)
    return X, W, b, tie


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [64, 100, 128, 200, 1000, 1037])
def test_predict_mixes_proven_and_float32_rows_in_order(n, threads):
    """Near-ties scattered among ordinary rows: the unproven rows are gathered a tile at a time and each
    label lands on its own row, for any thread count and a batch of any length."""
    X, W, b, tie = mixed_problem(n, seed=n)
    exact = exact_labels(X, W, b, SCALE)
    np.testing.assert_array_equal(exact, np.where(tie, 1, 2))
    csoftmax.set_num_threads(threads)
    try:
        got = csoftmax.predict(X, W, b, SCALE)
    finally:
        csoftmax.set_num_threads(0)
    np.testing.assert_array_equal(got, exact)
    if INFO["vnni"]:
        proven = _core.vnni_proven_labels(X, W, b, x_scale=SCALE)
        np.testing.assert_array_equal(proven, np.where(tie, -1, 2))


@NEEDS_VNNI
def test_weights_it_cannot_take_are_refused_and_predict_uses_float32():
    rng = np.random.default_rng(5)
    X, W, b = problem(rng, 100, 20, 3)
    W[3, 1] = np.inf
    with pytest.raises(ValueError, match="does not take these weights"):
        _core.vnni_proven_labels(X, W, b, x_scale=SCALE)
    labels = csoftmax.predict(X, W, b, SCALE)  # the float32 forward's, whatever infinity makes of them
    assert labels.shape == (100,) and ((labels >= 0) & (labels < 3)).all()
    # rows so long that int32 sums would need fewer than 1024 levels
    X, W, b = problem(rng, 70, 9000, 3)
    with pytest.raises(ValueError, match="rows too long"):
        _core.vnni_proven_labels(X, W, b, x_scale=SCALE)
    np.testing.assert_array_equal(csoftmax.predict(X, W, b, SCALE), exact_labels(X, W, b, SCALE))


@NEEDS_VNNI
def test_nearly_every_test_image_is_proven_with_the_chapters_weights():
    train_iter, test_iter = iterators(full_data())
    model = train_recipe(train_iter, test_iter).model
    X, W, b = full_data().test_images, np.ascontiguousarray(model.W), model.b
    proven = _core.vnni_proven_labels(X, W, b, x_scale=SCALE)
    exact = exact_labels(X, W, b, SCALE)
    mine = proven >= 0
    np.testing.assert_array_equal(proven[mine], exact[mine])
    assert mine.mean() >= 0.99, f"{(~mine).sum()} of {len(X)} rows not proven"
    np.testing.assert_array_equal(csoftmax.predict(X, W, b, SCALE), exact)
