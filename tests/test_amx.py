"""AMX tiles for uint8 rows (kernels/amx_logits.hpp, kernels/amx_grad_weight.hpp): used where the machine
runs them and off with CSOFTMAX_AMX=0; float32-accurate (where three bf16 parts done carelessly would give
16 bits or fewer); the FMA path's answer where weights or gradients fall outside what the tiles hold
exactly; the same results as the FMA path, float32 rounding apart.

On a machine without AMX every test but the last two still runs, on the FMA path.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from helpers import assert_close, make_problem

import csoftmax
from csoftmax import _core, _isa, reference

INFO = csoftmax.build_info()
KERNELS = pathlib.Path(__file__).with_name("dispatch_kernels.py")
U = 2.0 ** -24  # float32's unit roundoff
NEEDS_AMX = pytest.mark.skipif(not INFO["amx"], reason=f"this process does not run AMX: {INFO['amx_reason']}")


def run_child(args, amx_setting):
    env = dict(os.environ, CSOFTMAX_AMX=amx_setting)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tempfile.gettempdir())  # not the source tree


def test_build_info_says_whether_amx_is_used_and_why():
    flags = _isa.cpu_flags() or set()
    machine_runs_it = {"amx_tile", "amx_bf16", "avx512_fp16", "avx512_bf16"} <= flags and sys.platform == "linux"
    variant_has_it = INFO.get("variant") in ("avx512", "native") and INFO["simd"] == "AVX-512"
    setting = os.environ.get("CSOFTMAX_AMX", "")
    assert INFO["amx"] == (machine_runs_it and variant_has_it and setting != "0"), INFO["amx_reason"]
    assert INFO["amx_reason"]
    if setting == "0":
        assert "CSOFTMAX_AMX=0" in INFO["amx_reason"]


def test_a_bad_setting_is_an_import_error():
    run = run_child(["-c", "import csoftmax"], "yes")
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "ImportError: CSOFTMAX_AMX=yes: takes 0 (off) or 1 (on where the machine runs it)")


def test_the_setting_turns_it_off():
    run = run_child(["-c", "import csoftmax; i = csoftmax.build_info(); print(i['amx'], i['amx_reason'])"], "0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() in ("False off (CSOFTMAX_AMX=0)",
                                  "False not compiled into this variant (it needs AVX-512 on x86-64 Linux)")


def row_scales(X, W, b, x_scale):
    """Per row, the largest over classes of sum_d |x_scale x_d w_dc| + |b_c|: what float32 sums round against."""
    return (np.abs(X.astype(np.float64) * x_scale) @ np.abs(W.astype(np.float64)) + np.abs(b)).max(axis=1)


@pytest.mark.parametrize("B, D, C", [(256, 784, 10), (37, 45, 3), (33, 100, 16), (17, 31, 17), (40, 65, 33)])
def test_the_forward_is_float32_accurate(B, D, C):
    X, W, b, _, x_scale, _ = make_problem(B, D, C, np.uint8)
    W *= 20  # logits of tens: their low bits matter
    got = _core.linear_forward(X, W, b, "log_softmax", x_scale=x_scale)
    Z = X.astype(np.float64) * x_scale @ W.astype(np.float64) + b
    ref = Z - Z.max(axis=1, keepdims=True)
    ref -= np.log(np.exp(ref).sum(axis=1, keepdims=True))
    bound = 8 * U * row_scales(X, W, b, x_scale)[:, None] + 4 * U * np.abs(ref)
    err = np.abs(got - ref)
    assert np.all(err <= bound), f"max error / bound {np.max(err / bound):.3g}"


@pytest.mark.parametrize("B, D, C", [(256, 784, 10), (130, 45, 3), (33, 100, 16), (40, 65, 33)])
def test_the_weight_gradient_is_float32_accurate(B, D, C):
    X, W, b, y, x_scale, _ = make_problem(B, D, C, np.uint8)
    W *= 5
    got = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, kernel="single_pass").grad_W
    Z = X.astype(np.float64) * x_scale @ W.astype(np.float64) + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    onehot = np.eye(C)[y]
    ref = (X.astype(np.float64) * x_scale).T @ (P - onehot) / B
    # float32 G = P - onehot carries an absolute error of a few units of P and of the one, and the sums
    # over rows their own (the FMA path sums the rows one after another)
    bound = 32 * U * (X.astype(np.float64) * x_scale).T @ (P + onehot) / B
    err = np.abs(got - ref)
    assert np.all(err <= bound + 1e-30), f"max error / bound {np.max(err / (bound + 1e-30)):.3g}"


def test_gradients_spanning_the_float32_range_keep_their_precision():
    """A sure model: the other classes' probabilities run down to 1e-30 and below, far under the largest."""
    X, W, b, y, x_scale, _ = make_problem(64, 50, 10, np.uint8)
    W *= 300
    out = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, kernel="single_pass")
    ref = reference.linear_cross_entropy(X, W, b, y, x_scale=x_scale, dtype=np.float64)
    assert_close(out.grad_W, ref.grad_W, "grad_W", rtol=1e-5, atol=1e-6)


WEIGHTS_THE_TILES_REFUSE = {
    "large": 40000.0,           # its parts, scaled by 2^112, would overflow
    "tiny": 1e-35,              # its lowest part would be subnormal, which the tiles flush
    "inf": np.inf,
    "nan": np.nan,
}


@pytest.mark.parametrize("kind", list(WEIGHTS_THE_TILES_REFUSE))
def test_weights_the_tiles_refuse_take_the_fma_path(kind):
    X, W, b, y, x_scale, _ = make_problem(48, 40, 10, np.uint8)
    X[:, 7] = 0  # the odd weight meets zero pixels (0 * inf is NaN, as the reference says)
    X[::3, 7] = 3
    W[7, 4] = WEIGHTS_THE_TILES_REFUSE[kind]
    with np.errstate(all="ignore"):
        got = _core.linear_forward(X, W, b, "softmax", x_scale=x_scale)
        Z = X.astype(np.float64) * x_scale @ W.astype(np.float64) + b
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
    assert np.array_equal(np.isnan(got), np.isnan(P))
    finite = ~np.isnan(P)
    assert_close(got[finite], P[finite], f"softmax with a {kind} weight")


def test_an_infinite_logit_makes_the_same_nans_as_the_fma_path():
    """b = inf: every row's softmax is NaN, the gradients too; the tiles hand such a group back."""
    X, W, b, y, x_scale, _ = make_problem(40, 30, 10, np.uint8)
    b[3] = np.inf
    with np.errstate(all="ignore"):
        out = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, kernel="single_pass")
    assert np.isnan(out.loss) and np.isnan(out.grad_W).all()


@NEEDS_AMX
def test_the_tiles_and_the_fma_path_agree():
    """dispatch_kernels.py (each kernel once, checked against the reference) with and without AMX."""
    import json
    results = {}
    for setting in ("1", "0"):
        run = run_child([str(KERNELS)], setting)
        assert run.returncode == 0, run.stderr[-3000:]
        results[setting] = json.loads(run.stdout.splitlines()[-1])["results"]
    for kernel, arrays in results["1"].items():
        for i, (a, b) in enumerate(zip(arrays, results["0"][kernel], strict=True)):
            assert_close(a, b, f"AMX vs FMA: {kernel}[{i}]", rtol=1e-5, atol=1e-6)


@NEEDS_AMX
def test_an_sgd_epoch_on_the_tiles_matches_the_fma_path():
    code = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from helpers import make_problem
from csoftmax import _core
X, W, b, y, x_scale, _ = make_problem(512, 784, 10, np.uint8)
order = np.random.default_rng(1).permutation(len(X)).astype(np.int64)
wt, bias = np.ascontiguousarray(W.T), b.copy()
loss, correct = _core.sgd_epoch(X, y.astype(np.int64), order, 256, 0.1, x_scale, wt, bias)
np.save(sys.argv[1], np.concatenate([[loss, correct], wt.ravel(), bias]))
""".format(tests=str(pathlib.Path(__file__).parent))
    with tempfile.TemporaryDirectory() as tmp:
        saved = {}
        for setting in ("1", "0"):
            path = os.path.join(tmp, f"amx{setting}.npy")
            run = run_child(["-c", code, path], setting)
            assert run.returncode == 0, run.stderr[-3000:]
            saved[setting] = np.load(path)
    assert saved["1"][1] == saved["0"][1]  # correct predictions
    assert_close(saved["1"], saved["0"], "epoch (loss, correct, W, b): AMX vs FMA", rtol=1e-5, atol=1e-6)
