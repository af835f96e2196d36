"""Bad input gets a ValueError or TypeError naming the argument: never a crash or a silent wrong answer.

linear_cross_entropy's table runs against both kernels: each checks its own inputs in C++."""

import numpy as np
import pytest

import csoftmax
from csoftmax import _core

rng = np.random.default_rng(0)
X = rng.standard_normal((8, 5)).astype(np.float32)
W = rng.standard_normal((5, 3)).astype(np.float32)
b = np.zeros(3, np.float32)
y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


KERNELS = pytest.mark.parametrize("kernel", ["single_pass", "tiled"])


def lce(kernel="single_pass", **changes):
    args = dict(X=X, W=W, b=b, y=y, kernel=kernel)
    args.update(changes)
    return csoftmax.linear_cross_entropy(args.pop("X"), args.pop("W"), args.pop("b"), args.pop("y"), **args)


BAD_CALLS = [
    # (changes, exception, message fragment)
    (dict(X=X[:, :4]), ValueError, "W"),                        # D mismatch
    (dict(W=W[:, :2]), ValueError, "b"),                        # C mismatch between W and b
    (dict(y=y[:5]), ValueError, "y"),                           # too few labels
    (dict(X=X[0]), ValueError, "X"),                            # wrong ndim
    (dict(X=X[None]), ValueError, "X"),
    (dict(W=W[None]), ValueError, "W"),
    (dict(b=b[None]), ValueError, "b"),
    (dict(y=y[None]), ValueError, "y"),
    (dict(X=X[:0], y=y[:0]), ValueError, "empty"),              # empty batch
    (dict(rows=np.array([], dtype=np.int64)), ValueError, "empty"),
    (dict(X=np.zeros((8, 0), np.float32), W=np.zeros((0, 3), np.float32)), ValueError, "feature"),
    (dict(y=np.where(y == 2, 3, y)), ValueError, "y: label 3"),  # label out of range
    (dict(y=np.where(y == 2, -1, y)), ValueError, "y: label -1"),
    (dict(rows=np.array([0, 8])), ValueError, "rows"),          # rows out of range
    (dict(rows=np.array([-1, 0])), ValueError, "rows"),
    (dict(rows=np.array([[0, 1]])), ValueError, "rows"),
    (dict(rows=np.array([0.0, 1.0])), TypeError, "rows"),
    (dict(x_scale=float("nan")), ValueError, "x_scale"),
    (dict(x_scale=float("inf")), ValueError, "x_scale"),
    (dict(x_scale="big"), TypeError, "x_scale"),
    (dict(reduction="max"), ValueError, "reduction"),
    (dict(X=X.astype(np.int32)), TypeError, "X"),               # unsupported dtypes
    (dict(X=X.astype(np.complex64)), TypeError, "X"),
    (dict(X=X.astype(bool)), TypeError, "X"),
    (dict(X=np.array([["a"] * 5] * 8)), TypeError, "X"),
    (dict(W=W.astype(np.int64)), TypeError, "W"),
    (dict(y=y.astype(np.float32)), TypeError, "y"),
    (dict(y=y.astype(bool)), TypeError, "y"),
    (dict(y=np.array(["a"] * 8)), TypeError, "y"),
]


@KERNELS
@pytest.mark.parametrize("changes, error, fragment", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_linear_cross_entropy_rejects(changes, error, fragment, kernel):
    with pytest.raises(error, match=fragment):
        lce(kernel, **changes)


# What only the tiled kernel takes, out of range; the single-pass kernel refuses the options themselves.
TILED_ONLY_BAD_CALLS = [
    (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(label_smoothing=float("nan")), ValueError, "label_smoothing"),
    (dict(label_smoothing="a"), TypeError, "label_smoothing"),
    (dict(ignore_index=1.0), TypeError, "ignore_index"),
    (dict(ignore_index=2**70), ValueError, "ignore_index"),
    (dict(row_weights=np.ones(7, np.float32)), ValueError, "row_weights"),
    (dict(row_weights=np.ones((8, 1), np.float32)), ValueError, "row_weights"),
    (dict(layout="DX"), ValueError, "layout"),
    (dict(layout="CD"), ValueError, "W"),                       # (5, 3) is not (C, D) for D = 5
]


@pytest.mark.parametrize("changes, error, fragment", TILED_ONLY_BAD_CALLS,
                         ids=[str(i) for i in range(len(TILED_ONLY_BAD_CALLS))])
def test_tiled_kernel_rejects(changes, error, fragment):
    with pytest.raises(error, match=fragment):
        lce("tiled", **changes)


@pytest.mark.parametrize("option", [dict(ignore_index=0), dict(label_smoothing=0.1), dict(return_lse=True),
                                    dict(row_weights=np.ones(8, np.float32))])
def test_single_pass_kernel_refuses_what_only_the_tiled_one_does(option):
    with pytest.raises(ValueError, match="kernel='single_pass' supports none of"):
        lce("single_pass", **option)


@KERNELS
def test_uint8_labels_past_class_count_are_caught(kernel):
    with pytest.raises(ValueError, match="label 255"):
        lce(kernel, y=np.full(8, 255, dtype=np.uint8))


@KERNELS
def test_label_of_unselected_row_is_not_checked_but_selected_is(kernel):
    bad = y.copy()
    bad[7] = 99
    lce(kernel, y=bad, rows=np.array([0, 1, 2]))  # row 7 is not in the batch
    with pytest.raises(ValueError, match="y: label 99 at position 7"):
        lce(kernel, y=bad, rows=np.array([0, 7]))


@KERNELS
def test_read_only_inputs_are_fine(kernel):
    ro = [a.copy() for a in (X, W, b, y)]
    for a in ro:
        a.setflags(write=False)
    expected = lce(kernel)
    assert lce(kernel, X=ro[0], W=ro[1], b=ro[2], y=ro[3]).loss == expected.loss


@KERNELS
def test_tensor_that_requires_grad_names_the_argument(kernel):
    class RequiresGrad:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("Can't call numpy() on Tensor that requires grad.")

    with pytest.raises(TypeError, match="W: cannot be viewed"):
        lce(kernel, W=RequiresGrad())


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: csoftmax.softmax(np.float32(1.0)), ValueError, "scalar"),
    (lambda: csoftmax.softmax(np.zeros((2, 0))), ValueError, "empty"),
    (lambda: csoftmax.softmax(np.arange(3)), TypeError, "floating"),
    (lambda: csoftmax.cross_entropy(np.zeros((2, 3)), [0, 3]), ValueError, "y"),
    (lambda: csoftmax.cross_entropy(np.zeros((2, 3)), [0]), ValueError, "y"),
    (lambda: csoftmax.cross_entropy(np.zeros(3), [0]), ValueError, "logits"),
    (lambda: csoftmax.cross_entropy(np.zeros((2, 3)), [0, 1], reduction="avg"), ValueError, "reduction"),
    (lambda: csoftmax.linear_softmax(X, W[:4], b), ValueError, "W"),
    (lambda: csoftmax.predict(X, W, b, rows=[9]), ValueError, "rows"),
    (lambda: csoftmax.predict(X, W, b, x_scale=float("nan")), ValueError, "x_scale"),
])
def test_other_functions_reject(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_core_refuses_what_the_python_layer_would_have_converted():
    """The extension is safe on its own: wrong dtype, layout or writability is refused, not reinterpreted."""
    labels = y.astype(np.int64)
    with pytest.raises(TypeError, match="X"):
        _core.linear_cross_entropy(X.astype(np.float64), W, b, labels)
    with pytest.raises(ValueError, match="contiguous"):
        _core.linear_cross_entropy(np.asfortranarray(X), W, b, labels)
    with pytest.raises(TypeError, match="rows"):
        _core.linear_cross_entropy(X, W, b, labels, rows=[0, 1])
    with pytest.raises(ValueError, match="layout: must be 'DC'"):
        _core.linear_cross_entropy(X, W, b, labels, layout="chapter")
    with pytest.raises(TypeError):  # everything after the arrays is named
        _core.linear_cross_entropy(X, W, b, labels, None, 1.0)
    wt = np.ascontiguousarray(W.T)
    wt.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _core.sgd_epoch(X, labels, np.arange(8), batch_size=4, lr=0.1, x_scale=1.0, wt=wt, bias=b.copy())
    with pytest.raises(ValueError, match="batch_size"):
        _core.sgd_epoch(X, labels, np.arange(8), batch_size=0, lr=0.1, x_scale=1.0, wt=np.ascontiguousarray(W.T),
                        bias=b.copy())
    with pytest.raises(ValueError, match="order"):
        _core.sgd_epoch(X, labels, np.array([0, 8]), batch_size=4, lr=0.1, x_scale=1.0, wt=np.ascontiguousarray(W.T),
                        bias=b.copy())


# --- defects found by review and fuzzing ---------------------------------------------------------------

LANE_CLASS_LIMIT = 2**24  # labels and argmax indices travel as float32 lanes in the single-pass kernel


def test_single_pass_refuses_more_classes_than_float32_lanes_count_exactly():
    C = LANE_CLASS_LIMIT + 2  # class 2^24 + 1 has no float32
    X = np.ones((2, 1), np.float32)
    W = np.zeros((1, C), np.float32)
    b = np.zeros(C, np.float32)
    b[C - 1] = 1.0  # every row's argmax is the last class
    labels = np.array([C - 1, C - 2])
    with pytest.raises(ValueError, match=r"single_pass.*16777216 classes.*kernel='tiled'"):
        csoftmax.linear_cross_entropy(X, W, b, labels, kernel="single_pass")
    with pytest.raises(ValueError, match="16777216 classes"):
        csoftmax.predict(X, W, b)
    # the tiled kernel (the automatic choice at this size) keeps indices as integers
    tiled = csoftmax.linear_cross_entropy(X, W, b, labels, grad_weight=False)
    assert tiled.correct == 1


def test_row_kernels_refuse_outputs_they_do_not_make():
    Z = np.zeros((2, 3), np.float32)
    for what in ("argmax", "logits"):
        with pytest.raises(ValueError, match="what: expected 'softmax', 'log_softmax' or 'cross_entropy'"):
            _core.softmax_rows(Z, what)
    for what in ("cross_entropy", "logits"):
        with pytest.raises(ValueError, match="what: expected 'softmax', 'log_softmax' or 'argmax'"):
            _core.linear_forward(X, W, b, what)


@pytest.mark.parametrize("B, C, D, name", [
    (-1, 10, 10, "B"), (0, 10, 10, "B"), (10, -5, 10, "C"), (10, 0, 10, "C"), (10, 10, -1, "D"),
    (2**41, 10, 10, "B"), (10, 2**41, 10, "C"), (10, 10, 2**41, "D"), (2**62, 2**62, 2**62, "B"),
])
def test_tiled_plan_refuses_negative_and_absurd_sizes(B, C, D, name):
    with pytest.raises(ValueError, match=f"tiled_plan: {name} must be in"):
        _core.tiled_plan(B=B, C=C, D=D)


def plan_oracle(B, C):
    """row_block by the rule tiled_linear_cross_entropy.hpp states, in Python's unbounded integers."""
    plan = _core.tiled_plan(B=B, C=C, D=2**40)
    micro, unit = plan["micro_tile"][0], plan["row_unit"]
    width = csoftmax.build_info()["simd_width"]
    ld = -(-C // width) * width
    ld += width if ld % 512 == 0 else 0
    row_bytes = ld * 4
    budget = min(max(B * row_bytes // 16, 19 << 20), 48 << 20)
    # at most one packed A block of rows (derived from L2; its rule is tested in test_tuning.py)
    rows = min(max(budget // row_bytes // unit * unit, 4 * micro), _core.tuning()["max_row_block"])
    return min(rows, B), ld


@pytest.mark.parametrize("B, C", [(2**40, 2**40), (2**40, 2**22), (2**39 + 3, 12345), (1, 2**40), (2**40, 1)])
def test_tiled_plan_of_huge_sizes_does_not_overflow(B, C):
    plan = _core.tiled_plan(B=B, C=C, D=2**40)
    rows, ld = plan_oracle(B, C)
    assert plan["row_block"] == rows
    assert plan["logits_bytes"] == rows * ld * 4
