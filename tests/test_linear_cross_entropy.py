"""The fused step against the NumPy reference (float64) over a grid of shapes, dtypes and options."""

import numpy as np
import pytest
from helpers import assert_close, make_problem

import csoftmax
from csoftmax import reference

BATCHES = [1, 2, 7, 256, 1000]
FEATURES = [1, 3, 784, 1000]
CLASSES = [2, 3, 10, 17, 100, 1000]


def check_against_reference(B, D, C, dtype, use_rows, reduction, grad_input=True, kernel="single_pass"):
    X, W, b, y, x_scale, rows = make_problem(B, D, C, dtype, rows=use_rows)
    got = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, reduction=reduction,
                                        grad_input=grad_input, kernel=kernel)
    ref = reference.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, reduction=reduction,
                                         grad_input=grad_input, dtype=np.float64)
    assert_close(got.loss, ref.loss, "loss")
    assert_close(got.grad_W, ref.grad_W, "grad_W")
    assert_close(got.grad_b, ref.grad_b, "grad_b")
    if grad_input:
        assert_close(got.grad_X, ref.grad_X, "grad_X")
    else:
        assert got.grad_X is None
    # argmax may legitimately differ where two logits tie within float32 rounding
    assert abs(got.correct - ref.correct) <= max(1, B // 500)
    assert got.grad_W.dtype == np.float32 and got.grad_W.shape == W.shape
    return got, ref


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_rows", [False, True], ids=["all-rows", "rows"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("D", FEATURES)
@pytest.mark.parametrize("B", BATCHES)
def test_grid_matches_reference(B, D, C, dtype, use_rows, reduction):
    """The single-pass kernel on every shape (for C > csoftmax.ops.SMALL_C_MAX the default picks the
    tiled kernel, which tests/test_tiled_linear_cross_entropy.py checks on its own grid)."""
    # grad_X only on part of the grid: it is the expensive output of the reference at C = 1000
    check_against_reference(B, D, C, dtype, use_rows, reduction, grad_input=(B * C <= 256 * 100))


def test_per_row_loss_and_correct_exact_on_chapter_shape():
    got, ref = check_against_reference(256, 784, 10, np.uint8, True, "none")
    assert got.loss.shape == (256,) and got.loss.dtype == np.float32
    assert got.correct == ref.correct


@pytest.mark.parametrize("B", [20000, 20007])
def test_blocks_of_several_gradient_groups_match_reference(B):
    """Past 64 blocks a block has more rows than one gradient group (kGradientGroupRows, 128): here
    about 320 rows, in groups of 128, 128 and the rest; with B = 20007 the last block ends in a short
    tile."""
    check_against_reference(B, 64, 10, np.uint8, False, "mean", grad_input=True)


def test_rows_equal_gathered_copy():
    X, W, b, y, x_scale, rows = make_problem(100, 50, 7, np.uint8, rows=True)
    by_index = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True)
    copied = csoftmax.linear_cross_entropy(X[rows], W, b, y[rows], x_scale=x_scale, grad_input=True)
    assert by_index.loss == copied.loss
    for name in ("grad_W", "grad_b", "grad_X"):
        np.testing.assert_array_equal(getattr(by_index, name), getattr(copied, name), err_msg=name)


def test_non_contiguous_inputs_are_handled():
    X, W, b, y, x_scale, _ = make_problem(64, 30, 5, np.float32)
    Xf = np.asfortranarray(X)
    W_view = np.ascontiguousarray(W.T).T  # same values, transposed strides
    X_strided = np.repeat(X, 2, axis=1)[:, ::2]
    y_strided = np.repeat(y, 2)[::2]
    expected = csoftmax.linear_cross_entropy(X, W, b, y)
    for got in (csoftmax.linear_cross_entropy(Xf, W_view, b, y),
                csoftmax.linear_cross_entropy(X_strided, W, b, y_strided)):
        assert got.loss == expected.loss
        np.testing.assert_array_equal(got.grad_W, expected.grad_W)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                         np.uint64])
def test_any_integer_label_dtype(label_dtype):
    X, W, b, y, _, _ = make_problem(20, 8, 4, np.float32)
    expected = csoftmax.linear_cross_entropy(X, W, b, y)
    got = csoftmax.linear_cross_entropy(X, W, b, y.astype(label_dtype))
    assert got.loss == expected.loss


def test_float64_and_list_inputs_are_converted():
    X, W, b, y, _, _ = make_problem(10, 4, 3, np.float32)
    expected = csoftmax.linear_cross_entropy(X, W, b, y)
    got = csoftmax.linear_cross_entropy(X.astype(np.float64).tolist(), W.astype(np.float64), b.tolist(), y.tolist())
    assert got.loss == pytest.approx(expected.loss, rel=1e-6)


def test_inputs_are_not_modified():
    X, W, b, y, x_scale, rows = make_problem(40, 12, 6, np.uint8, rows=True)
    copies = [a.copy() for a in (X, W, b, y, rows)]
    csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True)
    for before, after in zip(copies, (X, W, b, y, rows)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("logit_row", [
    [1e4, 0.0, -1e4],
    [-1e4, -1e4 + 1, -1e4 + 2],
    [1e4, 1e4, 1e4],
    [0.0, 0.0, 0.0],
    [88.8, 0.0, -88.8],
    [50.0, -50.0, -50.0],
])
@pytest.mark.parametrize("label", [0, 1, 2])
def test_fused_step_with_extreme_logits(logit_row, label):
    # D = 1, X = 1: the logits are exactly b, so every extreme is reached exactly.
    X = np.ones((2, 1), np.float32)
    W = np.zeros((1, 3), np.float32)
    b = np.array(logit_row, np.float32)
    y = np.array([label, label])
    got = csoftmax.linear_cross_entropy(X, W, b, y, reduction="none", grad_input=True)
    ref = reference.linear_cross_entropy(X, W, b, y, reduction="none", grad_input=True, dtype=np.float64)
    for name in ("loss", "grad_W", "grad_b", "grad_X"):
        value = getattr(got, name)
        assert np.all(np.isfinite(value)), name
        assert_close(value, getattr(ref, name), name)
    assert np.all(got.loss >= 0)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_gives_non_finite_output_not_a_wrong_number(bad_value):
    X, W, b, y, _, _ = make_problem(40, 20, 10, np.float32)
    X[3, 7] = bad_value
    got = csoftmax.linear_cross_entropy(X, W, b, y, reduction="none", grad_input=True)
    assert not np.isfinite(got.loss[3])
    assert np.all(np.isfinite(np.delete(got.loss, 3)))  # other rows unaffected
    assert not np.all(np.isfinite(got.grad_W))
    mean = csoftmax.linear_cross_entropy(X, W, b, y)
    assert not np.isfinite(mean.loss)


@pytest.mark.parametrize("kernel", ["single_pass", "tiled"])
def test_rows_with_nan_logits_are_never_correct(kernel):
    """argmax starts at class 0, and NaN compares false: a NaN row must not count as a hit for label 0."""
    C = 10 if kernel == "single_pass" else 300
    X = np.zeros((4, 2), np.float32)
    X[1, 0] = np.nan  # every logit of row 1 is NaN
    W = np.ones((2, C), np.float32)
    b = np.zeros(C, np.float32)
    b[0] = 1.0  # rows without NaN predict class 0
    y = np.zeros(4, np.int64)
    got = csoftmax.linear_cross_entropy(X, W, b, y, kernel=kernel, reduction="none")
    assert got.correct == 3
    assert np.isnan(got.loss[1])
    b[5] = np.nan  # now every row has a NaN logit (class 5), and class 0 is still the largest of the others
    got = csoftmax.linear_cross_entropy(X, W, b, y, kernel=kernel, reduction="none")
    assert got.correct == 0
    assert reference.linear_cross_entropy(X, W, b, y, dtype=np.float64).correct == 0


def test_nan_rows_are_not_counted_by_the_training_epoch():
    from csoftmax import _core

    X = np.zeros((32, 3), np.float32)
    X[::2, 1] = np.nan
    wt = np.ones((4, 3), np.float32)
    bias = np.array([1, 0, 0, 0], np.float32)
    y = np.zeros(32, np.int64)
    _, correct = _core.sgd_epoch(X, y, np.arange(32, dtype=np.int64), batch_size=32, lr=0.0, x_scale=1.0, wt=wt,
                                 bias=bias)
    assert correct == 16
