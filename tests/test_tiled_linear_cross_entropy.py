"""The large-vocabulary (tiled) kernel against the NumPy reference in float64.

Shapes are taken from the kernel's own plan (csoftmax._core.tiled_plan) so that they cross every
boundary it has: the class tile, the chunk of rows, the GEMM micro-tile and K block, the dX slices.
"""

import math
from typing import NamedTuple

import numpy as np
import pytest
from helpers import ATOL, RTOL, assert_close, make_problem

import csoftmax
from csoftmax import _core, reference
from csoftmax.ops import SMALL_C_MAX

PLAN = _core.tiled_plan(1000, 1000, 100)
CLASS_BLOCK = PLAN["class_block"]
ROW_BLOCK = PLAN["row_block"]  # for C up to ~18000 the chunk is the largest one
MICRO_ROWS, MICRO_COLS = PLAN["micro_tile"]
CLASSES = [1, 2, MICRO_COLS + 1, CLASS_BLOCK - 1, CLASS_BLOCK, CLASS_BLOCK + 1, 3 * CLASS_BLOCK + 7]
BATCHES = [1, 2, MICRO_ROWS + 1, ROW_BLOCK - 1, ROW_BLOCK, ROW_BLOCK + 1, 3 * ROW_BLOCK + 7]
# The sgemm's cache blocks, derived from this machine's caches (csoftmax/tuning.hpp)
TUNING = _core.tuning()
BLOCK_K, BLOCK_N, BLOCK_M = TUNING["block_k"], TUNING["block_n"], TUNING["block_m"]


class Run(NamedTuple):
    got: object  # the kernel's LinearCrossEntropyResult
    ref: object  # the float64 reference's
    lse_requested: bool  # whether the kernel was asked for the lse (return_lse)


def run_both(X, W, b, y, *, dtype_ref=np.float64, **options):
    kernel = options.pop("kernel", "tiled")
    lse_requested = kernel == "tiled"  # the single-pass kernel takes no return_lse
    got = csoftmax.linear_cross_entropy(X, W, b, y, kernel=kernel, return_lse=lse_requested, **options)
    options.pop("grad_weight", None)
    ref = reference.linear_cross_entropy(X, W, b, y, dtype=dtype_ref, **options)
    return Run(got, ref, lse_requested)


def check(got, ref, lse_requested, grad_input=True, tolerance=1.0):
    rtol, atol = RTOL * tolerance, ATOL * tolerance
    if np.ndim(ref.loss) == 0 and math.isnan(ref.loss):
        assert math.isnan(got.loss)
    else:
        assert_close(got.loss, ref.loss, "loss", rtol, atol)
    assert_close(got.grad_W, ref.grad_W, "grad_W", rtol, atol)
    if ref.grad_b is None:
        assert got.grad_b is None
    else:
        assert_close(got.grad_b, ref.grad_b, "grad_b", rtol, atol)
    if grad_input:
        assert_close(got.grad_X, ref.grad_X, "grad_X", rtol, atol)
    assert (got.lse is not None) == lse_requested
    if lse_requested:
        assert_close(got.lse, ref.lse, "lse", rtol, atol)
    assert abs(got.correct - ref.correct) <= max(1, len(ref.lse) // 500)


@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("D", [1, 17, 300])
def test_classes_cross_every_tile_boundary(C, D):
    X, W, b, y, _, _ = make_problem(MICRO_ROWS * 3 + 5, D, C, np.float32)
    check(*run_both(X, W, b, y, grad_input=True))


# dW is summed over ranges of WEIGHT_CLASS_BLOCK classes (whole micro-panels, unlike the class tile),
# each against the chunk's X packed once when D is whole (one feature slice: 4 class tiles or more)
WEIGHT_CLASS_BLOCK = PLAN["weight_class_block"]
WHOLE_D_CLASSES = max(2 * WEIGHT_CLASS_BLOCK, 4 * CLASS_BLOCK) + 5  # two ranges or more, one feature slice


@pytest.mark.parametrize("layout", ["DC", "CD"])
@pytest.mark.parametrize("C", [WEIGHT_CLASS_BLOCK - 1, WEIGHT_CLASS_BLOCK + 1, WHOLE_D_CLASSES])
def test_classes_cross_every_weight_gradient_range(C, layout):
    B = ROW_BLOCK + MICRO_ROWS + 3  # two chunks: the second adds to dW
    assert (_core.tiled_plan(B, C, 300)["feature_slices"] == 1) == (C == WHOLE_D_CLASSES)
    X, W, b, y, _, _ = make_problem(B, 300, C, np.float32)
    W = np.ascontiguousarray(W.T) if layout == "CD" else W
    check(*run_both(X, W, b, y, grad_input=True, layout=layout))


@pytest.mark.parametrize("layout", ["DC", "CD"])
@pytest.mark.parametrize("D", sorted({BLOCK_K - 1, BLOCK_K + 1, BLOCK_N - 1, BLOCK_N + 1, BLOCK_M - 1, BLOCK_M + 1}))
def test_features_cross_every_gemm_block(D, layout):
    # D is the depth (block_k) of the logits GEMM, the columns (block_n) of dX's and, in the CD layout,
    # of dW's; in the DC layout, with 4 class tiles or more, the rows (block_m) of dW's
    C = 4 * CLASS_BLOCK + 5
    X, W, b, y, _, _ = make_problem(2 * MICRO_ROWS + 3, D, C, np.float32)
    W = np.ascontiguousarray(W.T) if layout == "CD" else W
    check(*run_both(X, W, b, y, grad_input=True, layout=layout))


@pytest.mark.parametrize("C", [BLOCK_K - 1, BLOCK_K + 1, 2 * BLOCK_K + 1])
def test_classes_cross_the_depth_block_of_the_softcap_input_gradient(C):
    # with a soft cap and label smoothing dX = G . W is one GEMM over the classes: C is its depth
    X, W, b, y, _, _ = make_problem(MICRO_ROWS + 5, 70, C, np.float32)
    check(*run_both(X, W, b, y, grad_input=True, softcap=3.0, label_smoothing=0.1))


# With a cap and label smoothing, dX = G . W is summed by class groups (phase 2b), each into a partial
# of its own, by slices of D where there are fewer class tiles than groups, each group's classes in
# blocks of the depth block: C gives 2 and 3 groups (sliced D), then groups of more than one block.
GROUPS, DEPTH_BLOCK = PLAN["class_groups"], PLAN["gradient_depth_block"]


@pytest.mark.parametrize("C", [CLASS_BLOCK + 1, 2 * CLASS_BLOCK + 1,
                               GROUPS * (DEPTH_BLOCK // CLASS_BLOCK + 1) * CLASS_BLOCK + 3])
def test_softcap_input_gradient_crosses_class_groups_slices_and_depth_blocks(C):
    B, D = MICRO_ROWS + 5, 70
    plan = _core.tiled_plan(B, C, D)
    tiles = -(-C // CLASS_BLOCK)
    assert plan["feature_slices"] > 1 if tiles < GROUPS else tiles // plan["class_groups"] * CLASS_BLOCK > DEPTH_BLOCK
    X, W, b, y, _, _ = make_problem(B, D, C, np.float32)
    W *= 8  # logits of order 10: the cap's slopes matter
    check(*run_both(X, W, b, y, grad_input=True, softcap=5.0, label_smoothing=0.1))


@pytest.mark.parametrize("B", BATCHES)
def test_rows_cross_every_chunk_boundary(B):
    X, W, b, y, _, _ = make_problem(B, 40, CLASS_BLOCK + 3, np.float32)
    check(*run_both(X, W, b, y, grad_input=True, reduction="sum"))


def test_several_chunks_when_the_logits_budget_binds():
    C = 20000  # where the budget starts to bind depends on the build's micro-tile (ROW_BLOCK)
    while _core.tiled_plan(1000, C, 16)["row_block"] >= ROW_BLOCK:
        C *= 2
    rows = _core.tiled_plan(1000, C, 16)["row_block"]
    X, W, b, y, _, _ = make_problem(2 * rows + 5, 16, C, np.float32)
    assert _core.tiled_plan(len(X), C, 16)["row_block"] == rows
    check(*run_both(X, W, b, y, grad_input=True, ignore_index=int(y[0]), label_smoothing=0.05))


@pytest.mark.parametrize("B, C", [(10, 10**6), (1024, 50257), (4096, 32768), (10**6, 50257), (4096, 10**6)])
def test_logits_kept_are_bounded(B, C):
    plan = _core.tiled_plan(B, C, 64)
    full = B * (C + 16) * 4  # all the logits, in rows padded as the chunk's are (at most 16 floats)
    # the chunk never has fewer than 4 micro-panels of rows (kMinRowBlock): past C ~ 220000 that
    # overrides the 48 MiB cap (kLogitsCapBytes), and (C + 16) allows for the padded row stride
    min_rows = 4 * plan["micro_tile"][0]
    assert plan["logits_bytes"] <= max(19 << 20, full // 16, min_rows * (C + 16) * 4)
    assert plan["logits_bytes"] <= max(48 << 20, min_rows * (C + 16) * 4)


def test_class_groups_of_the_online_softmax():
    groups = _core.tiled_plan(50, 9 * CLASS_BLOCK + 5, 40)["class_groups"]
    assert groups > 1  # the running max moves across tiles and groups, rescaling the partials of dX
    X, W, b, y, _, _ = make_problem(50, 40, 9 * CLASS_BLOCK + 5, np.float32)
    W[:, -1] += 3.0  # the largest logits in the last tile
    check(*run_both(X, W, b, y, grad_input=True, label_smoothing=0.3))


def test_grad_input_alone_keeps_no_logits():
    X, W, b, y, _, _ = make_problem(60, 20, 3 * CLASS_BLOCK + 7, np.float32)
    lean = csoftmax.linear_cross_entropy(X, W, b, y, grad_input=True, grad_weight=False, label_smoothing=0.1)
    ref = reference.linear_cross_entropy(X, W, b, y, grad_input=True, label_smoothing=0.1, dtype=np.float64)
    assert_close(lean.loss, ref.loss, "loss")
    assert_close(lean.grad_X, ref.grad_X, "grad_X")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["DC", "CD"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("ignore", [None, -100, "class"], ids=["no-ignore", "ignore=-100", "ignore=a-class"])
def test_options_against_reference(reduction, layout, smoothing, ignore):
    X, W, b, y, _, _ = make_problem(60, 33, 300, np.float32)
    if ignore == "class":
        ignore = int(y[1])  # collides with a valid class: those rows are ignored, the class stays
    elif ignore == -100:
        y[::4] = -100
    if layout == "CD":
        W = np.ascontiguousarray(W.T)
    run = run_both(X, W, b, y, grad_input=True, reduction=reduction, layout=layout, label_smoothing=smoothing,
                   ignore_index=ignore)
    check(*run)
    got = run.got
    assert got.grad_W.shape == W.shape
    if ignore is not None:
        ignored = y == ignore
        assert ignored.any() and np.all(got.grad_X[ignored] == 0)
        if reduction == "none":
            assert np.all(got.loss[ignored] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
def test_gathered_scaled_rows_and_no_bias(dtype):
    X, W, b, y, x_scale, rows = make_problem(70, 50, 300, dtype, rows=True)
    check(*run_both(X, W, None, y, x_scale=x_scale, rows=rows, grad_input=True))


def test_extreme_logits_stay_finite():
    X, W, b, y, _, _ = make_problem(40, 20, 500, np.float32)
    W *= 3000  # logits of order 1e4: exp of an unshifted logit would overflow
    b[:] = 0
    run = run_both(X, W, b, y, grad_input=True, reduction="none", label_smoothing=0.1)
    got = run.got
    assert np.all(np.isfinite(got.loss)) and np.all(np.isfinite(got.grad_W)) and np.all(np.isfinite(got.lse))
    check(*run, tolerance=10)


def test_a_single_class_has_zero_loss():
    X, W, b, y, _, _ = make_problem(9, 4, 1, np.float32)
    got = csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", grad_input=True)
    assert got.loss == 0 and np.all(got.grad_W == 0) and np.all(got.grad_X == 0) and got.correct == 9


def test_all_rows_ignored_gives_nan_mean_and_zero_gradients():
    X, W, b, y, _, _ = make_problem(10, 8, 300, np.float32)
    y[:] = -100
    got = csoftmax.linear_cross_entropy(X, W, b, y, ignore_index=-100, grad_input=True, return_lse=True)
    assert math.isnan(got.loss) and got.correct == 0
    assert not got.grad_W.any() and not got.grad_b.any() and not got.grad_X.any()
    assert_close(got.lse, reference.logsumexp(X.astype(np.float64) @ W + b), "lse")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("layout", ["DC", "CD"])
def test_class_weight_against_reference(reduction, smoothing, layout):
    X, W, b, y, _, _ = make_problem(60, 33, 2 * CLASS_BLOCK + 5, np.float32)
    y[::4] = -100
    class_weight = np.random.default_rng(2).uniform(0.0, 3.0, W.shape[1]).astype(np.float32)
    class_weight[int(y[1])] = 0.0  # a class that counts for nothing
    if layout == "CD":
        W = np.ascontiguousarray(W.T)
    run = run_both(X, W, b, y, grad_input=True, reduction=reduction, layout=layout, label_smoothing=smoothing,
                   ignore_index=-100, class_weight=class_weight)
    check(*run)
    if reduction == "mean":  # divided by the weight of the rows not ignored, not by their number
        kept = y != -100
        total = run_both(X, W, b, y, reduction="sum", layout=layout, label_smoothing=smoothing, ignore_index=-100,
                         class_weight=class_weight).got.loss
        assert run.got.loss == pytest.approx(total / class_weight[y[kept]].sum(dtype=np.float64), rel=1e-6)


def test_unit_class_weights_change_nothing():
    X, W, b, y, _, _ = make_problem(40, 20, 300, np.float32)
    plain = csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", label_smoothing=0.1, grad_input=True)
    ones = csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", label_smoothing=0.1, grad_input=True,
                                         class_weight=np.ones(300, np.float32))
    assert ones.loss == pytest.approx(plain.loss, rel=1e-6)
    for name in ("grad_W", "grad_b", "grad_X"):
        assert_close(getattr(ones, name), getattr(plain, name), name, rtol=1e-5, atol=1e-7)


def test_zero_class_weight_sum_gives_nan_mean_and_zero_gradients():
    X, W, b, y, _, _ = make_problem(10, 8, 300, np.float32)
    class_weight = np.ones(300, np.float32)
    class_weight[y] = 0.0
    got = csoftmax.linear_cross_entropy(X, W, b, y, class_weight=class_weight, grad_input=True)
    assert math.isnan(got.loss)  # PyTorch's 0 / 0
    assert not got.grad_W.any() and not got.grad_b.any() and not got.grad_X.any()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "class-weighted"])
def test_z_loss_against_reference(reduction, weighted):
    X, W, b, y, _, _ = make_problem(60, 33, 2 * CLASS_BLOCK + 5, np.float32)
    y[::4] = -100
    class_weight = np.random.default_rng(4).uniform(0.5, 2.0, W.shape[1]).astype(np.float32) if weighted else None
    run = run_both(X, W, b, y, grad_input=True, reduction=reduction, label_smoothing=0.1, ignore_index=-100,
                   class_weight=class_weight, z_loss=1e-2)
    check(*run)
    # the term on its own: mean over the rows not ignored, unweighted (Liger Kernel's convention)
    kept = y != -100
    row_z = np.where(kept, 1e-2 * run.ref.lse**2, 0.0)
    expected = {"mean": row_z.sum() / kept.sum(), "sum": row_z.sum(), "none": row_z}[reduction]
    assert_close(run.got.z_loss, expected, "z_loss")
    plain = csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", reduction=reduction, label_smoothing=0.1,
                                          ignore_index=-100, class_weight=class_weight)
    assert plain.z_loss is None
    assert_close(run.got.loss, np.asarray(plain.loss) + expected, "loss = cross-entropy + z-loss")


# With label smoothing, a capped dX is taken from the kept G after the logits (phase 2b); without,
# it is summed while they are computed, from the cap's slopes.
@pytest.mark.parametrize("label_smoothing", [0.1, 0.0], ids=["dX-from-G", "dX-online"])
@pytest.mark.parametrize("grad_weight", [True, False], ids=["dW+dX", "dX-only"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
def test_softcap_against_reference(grad_weight, dtype, label_smoothing):
    X, W, b, y, x_scale, rows = make_problem(MICRO_ROWS * 3 + 5, 37, 3 * CLASS_BLOCK + 7, dtype, rows=True)
    W *= 8  # logits of order 10-30: the cap (and its slope) matters
    y[rows[::4]] = -100
    class_weight = np.random.default_rng(5).uniform(0.5, 2.0, W.shape[1]).astype(np.float32)
    options = dict(x_scale=x_scale, rows=rows, grad_input=True, reduction="mean", label_smoothing=label_smoothing,
                   ignore_index=-100, class_weight=class_weight, z_loss=1e-4, softcap=15.0)
    got = csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", return_lse=True, grad_weight=grad_weight,
                                        **options)
    ref = reference.linear_cross_entropy(X, W, b, y, dtype=np.float64, **options)
    assert_close(got.loss, ref.loss, "loss")
    assert_close(got.grad_X, ref.grad_X, "grad_X")
    assert_close(got.lse, ref.lse, "lse")
    if grad_weight:
        assert_close(got.grad_W, ref.grad_W, "grad_W")
        assert_close(got.grad_b, ref.grad_b, "grad_b")
    assert got.lse.max() < np.log(W.shape[1]) + 15.0 + 1e-3  # lse of capped logits


@pytest.mark.parametrize("softcap", [None, 5.0])
@pytest.mark.parametrize("grad_weight", [True, False])
def test_predictions_and_token_accuracy(softcap, grad_weight):
    X, W, b, y, x_scale, rows = make_problem(MICRO_ROWS * 3 + 5, 20, 3 * CLASS_BLOCK + 7, np.uint8, rows=True)
    W *= 3
    Z = reference.linear_logits(X, W, b, x_scale=x_scale, rows=rows, dtype=np.float64)
    labels = y[rows]
    top = Z.argmax(axis=1)
    y[rows[::3]] = top[::3]  # a third right, whatever the weights
    y[rows[1]] = -100
    labels = y[rows]
    got = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, ignore_index=-100, softcap=softcap,
                                        grad_weight=grad_weight, return_predictions=True)
    np.testing.assert_array_equal(got.predicted, top)  # the cap is monotonic: the same argmax
    kept = labels != -100
    expected = (top == labels) & kept
    assert got.row_correct.dtype == bool
    np.testing.assert_array_equal(got.row_correct, expected)
    assert got.correct == expected.sum() > len(rows) // 4
    assert got.accuracy == pytest.approx(expected.sum() / kept.sum())
    plain = csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, ignore_index=-100)
    assert plain.predicted is None and plain.row_correct is None and plain.accuracy is None


def test_accuracy_of_no_counted_row_is_nan():
    X, W, b, y, _, _ = make_problem(10, 8, 300, np.float32)
    y[:] = -100
    got = csoftmax.linear_cross_entropy(X, W, b, y, ignore_index=-100, return_predictions=True)
    assert math.isnan(got.accuracy) and not got.row_correct.any()
    np.testing.assert_array_equal(got.predicted, (X.astype(np.float64) @ W + b).argmax(axis=1))


def test_row_weights_weight_each_rows_gradient():
    X, W, b, y, _, _ = make_problem(30, 10, 300, np.float32)
    weights = np.random.default_rng(1).standard_normal(30).astype(np.float32)
    run = run_both(X, W, b, y, grad_input=True, reduction="sum", row_weights=weights)
    check(*run)
    assert run.got.loss == csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled", reduction="sum").loss


def test_grad_weight_false_skips_the_weight_gradients():
    X, W, b, y, _, _ = make_problem(30, 10, 300, np.float32)
    full = csoftmax.linear_cross_entropy(X, W, b, y, grad_input=True)
    lean = csoftmax.linear_cross_entropy(X, W, b, y, grad_input=True, grad_weight=False)
    assert lean.grad_W is None and lean.grad_b is None
    assert lean.loss == full.loss
    np.testing.assert_array_equal(lean.grad_X, full.grad_X)


@pytest.mark.parametrize("C", [2, 10, SMALL_C_MAX, SMALL_C_MAX + 1, 300])
@pytest.mark.parametrize("kernel", ["single_pass", "tiled"])
def test_both_kernels_against_reference(C, kernel):
    X, W, b, y, x_scale, rows = make_problem(100, 50, C, np.uint8, rows=True)
    check(*run_both(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True, kernel=kernel))


@pytest.mark.parametrize("C, options, expected", [
    (SMALL_C_MAX, {}, "single_pass"),
    (SMALL_C_MAX + 1, {}, "tiled"),
    (10, {"ignore_index": -100}, "tiled"),
    (10, {"label_smoothing": 0.1}, "tiled"),
    (10, {"return_lse": True}, "tiled"),
])
def test_automatic_choice_of_kernel(C, options, expected):
    X, W, b, y, _, _ = make_problem(50, 20, C, np.float32)
    auto = csoftmax.linear_cross_entropy(X, W, b, y, **options)
    forced = csoftmax.linear_cross_entropy(X, W, b, y, kernel=expected, **options)
    assert auto.loss == forced.loss
    np.testing.assert_array_equal(auto.grad_W, forced.grad_W)


def test_tiled_matches_the_naive_kernel():
    X, W, b, y, _, _ = make_problem(MICRO_ROWS * 2 + 3, 300, CLASS_BLOCK + 9, np.float32)
    y[3] = -7
    class_weight = np.random.default_rng(3).uniform(0.5, 2.0, CLASS_BLOCK + 9).astype(np.float32)
    options = dict(mean=True, label_smoothing=0.2, ignore_index=-7, layout="CD", want_lse=True,
                   want_predictions=True, grad_weight=True,
                   grad_input=True, class_weight=class_weight, z_loss=1e-3, softcap=3.0)
    tiled = _core.tiled_linear_cross_entropy(X, np.ascontiguousarray(W.T), b, y, naive=False, **options)
    naive = _core.tiled_linear_cross_entropy(X, np.ascontiguousarray(W.T), b, y, naive=True, **options)
    assert tiled[1:4] == naive[1:4]  # counted rows, their weight, correct
    assert tiled[9] == pytest.approx(naive[9], rel=1e-5)  # z_loss_sum
    np.testing.assert_array_equal(tiled[11], naive[11])  # row_argmax
    np.testing.assert_array_equal(tiled[12], naive[12])  # row_correct
    for i, name in enumerate(["row_loss", "lse", "grad_W", "grad_b", "grad_X"], start=4):
        assert_close(tiled[i], naive[i], name)


@pytest.mark.parametrize("layout", ["DC", "CD"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
def test_naive_kernel_matches_the_numpy_reference(layout, dtype):
    """The plain-loop kernel (tiled_linear_cross_entropy_naive.hpp), the tiled one's reference, is itself
    held to the float64 NumPy reference."""
    X, W, b, y, x_scale, rows = make_problem(23, 37, 41, dtype, rows=True)
    y[rows[4]] = -3
    weights = np.random.default_rng(2).standard_normal(len(rows)).astype(np.float32)
    Wl = np.ascontiguousarray(W.T) if layout == "CD" else W
    naive = _core.tiled_linear_cross_entropy(X, Wl, b, y, rows=rows, x_scale=x_scale, mean=False,
                                             label_smoothing=0.1, ignore_index=-3, row_weights=weights,
                                             layout=layout, want_lse=True, grad_input=True, naive=True)
    ref = reference.linear_cross_entropy(X, Wl, b, y, x_scale=x_scale, rows=rows, reduction="none", grad_input=True,
                                         ignore_index=-3, label_smoothing=0.1, layout=layout, row_weights=weights,
                                         dtype=np.float64)
    _, counted, _, correct, row_loss, lse, grad_W, grad_b, grad_X = naive[:9]
    assert counted == int(np.sum(y[rows] != -3)) and correct == ref.correct
    for name, got in [("loss", row_loss), ("lse", lse), ("grad_W", grad_W), ("grad_b", grad_b), ("grad_X", grad_X)]:
        assert_close(got, getattr(ref, name), name)


def test_transposed_view_of_w_is_read_in_place():
    X, W, b, y, _, _ = make_problem(40, 30, 300, np.float32)
    class_major = np.ascontiguousarray(W.T)
    as_view = csoftmax.linear_cross_entropy(X, class_major.T, b, y, kernel="tiled")  # (D, C) view
    as_layout = csoftmax.linear_cross_entropy(X, class_major, b, y, kernel="tiled", layout="CD")
    assert as_view.loss == as_layout.loss
    # grad_W comes back in the caller's shape, as the transpose of the kernel's (C, D) output
    assert as_view.grad_W.shape == W.shape and as_view.grad_W.flags.f_contiguous
    np.testing.assert_array_equal(as_view.grad_W, as_layout.grad_W.T)


def test_any_thread_count_gives_identical_results_across_gemm_blocks(restore_threads):
    X, W, b, y, _, _ = make_problem(ROW_BLOCK + 3, BLOCK_K + 1, 4 * CLASS_BLOCK + 5, np.float32)
    results = []
    for threads in (1, 2, 3):
        csoftmax.set_num_threads(threads)
        results.append(csoftmax.linear_cross_entropy(X, W, b, y, grad_input=True, reduction="none"))
    for other in results[1:]:
        for name in ("loss", "grad_W", "grad_b", "grad_X"):
            np.testing.assert_array_equal(getattr(results[0], name), getattr(other, name), err_msg=name)


@pytest.mark.parametrize("softcap", [None, 5.0], ids=["dX-online", "dX-from-G"])
@pytest.mark.parametrize("layout", ["DC", "CD"])
def test_any_thread_count_gives_identical_results(layout, softcap, restore_threads):
    X, W, b, y, x_scale, rows = make_problem(2 * ROW_BLOCK + 9, 70, 3 * CLASS_BLOCK + 7, np.uint8, rows=True)
    y[::7] = -1
    W = np.ascontiguousarray(W.T) if layout == "CD" else W
    results = []
    for threads in (1, 2, 3, 4):  # odd counts: work items shared unevenly
        csoftmax.set_num_threads(threads)
        results.append(csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale, rows=rows, grad_input=True,
                                                     ignore_index=-1, label_smoothing=0.1, return_lse=True,
                                                     reduction="none", layout=layout, softcap=softcap))
    one = results[0]
    for threads, other in enumerate(results[1:], start=2):
        assert one.correct == other.correct
        for name in ("loss", "grad_W", "grad_b", "grad_X", "lse"):
            np.testing.assert_array_equal(getattr(one, name), getattr(other, name),
                                          err_msg=f"{name}, {threads} threads")


# --- bad input ------------------------------------------------------------------------------------

def problem():
    return make_problem(8, 5, 300, np.float32)[:4]


def test_label_outside_the_classes_is_rejected():
    X, W, b, y = problem()
    y[2] = 300
    with pytest.raises(ValueError, match=r"y: label 300 at position 2 is outside \[0, 300\)"):
        csoftmax.linear_cross_entropy(X, W, b, y)
    y[2] = -100  # not ignored unless asked
    with pytest.raises(ValueError, match="y: label -100"):
        csoftmax.linear_cross_entropy(X, W, b, y, kernel="tiled")
    y[2] = -5
    with pytest.raises(ValueError, match=r"is not ignore_index \(-100\)"):
        csoftmax.linear_cross_entropy(X, W, b, y, ignore_index=-100)


def test_wrong_layout_names_the_fix():
    X, W, b, y = problem()
    with pytest.raises(ValueError, match="layout='CD'"):
        csoftmax.linear_cross_entropy(X, np.ascontiguousarray(W.T), b, y)  # (C, D) given as the default "DC"
    with pytest.raises(ValueError, match="layout='DC'"):
        csoftmax.linear_cross_entropy(X, W, b, y, layout="CD")
    with pytest.raises(ValueError, match="layout: must be"):
        csoftmax.linear_cross_entropy(X, W, b, y, layout="CDX")


@pytest.mark.parametrize("options, error, match", [
    ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
    ({"label_smoothing": "a"}, TypeError, "label_smoothing"),
    ({"ignore_index": 1.0}, TypeError, "ignore_index"),
    ({"ignore_index": True}, TypeError, "ignore_index"),
    ({"ignore_index": 2**70}, ValueError, "ignore_index"),
    ({"row_weights": np.ones(3, np.float32)}, ValueError, "row_weights"),
    ({"kernel": "fast"}, ValueError, "kernel"),
    ({"kernel": "single_pass", "ignore_index": 3}, ValueError, "single_pass"),
    ({"class_weight": np.ones(299, np.float32)}, ValueError, "class_weight: expected size 300"),
    ({"z_loss": -1e-4}, ValueError, "z_loss: must be finite and >= 0"),
    ({"z_loss": math.inf}, ValueError, "z_loss: must be finite and >= 0"),
    ({"z_loss": "a"}, TypeError, "z_loss"),
    ({"kernel": "single_pass", "z_loss": 1e-4}, ValueError, "single_pass"),
    ({"kernel": "single_pass", "return_predictions": True}, ValueError, "single_pass"),
    ({"softcap": 0}, ValueError, "softcap: must be > 0"),
    ({"softcap": -30.0}, ValueError, "softcap: must be finite and >= 0"),
    ({"softcap": math.nan}, ValueError, "softcap"),
    ({"class_weight": np.full(300, -1.0, np.float32)}, ValueError, "class_weight: every weight must be finite"),
    ({"class_weight": np.full(300, np.nan, np.float32)}, ValueError, "class_weight: every weight must be finite"),
    ({"class_weight": np.ones((300, 1), np.float32)}, ValueError, "class_weight"),
    ({"kernel": "single_pass", "class_weight": np.ones(300, np.float32)}, ValueError, "single_pass"),
])
def test_bad_options_are_named(options, error, match):
    X, W, b, y = problem()
    with pytest.raises(error, match=match):
        csoftmax.linear_cross_entropy(X, W, b, y, **options)


def test_bad_bias_is_named():
    X, W, b, y = problem()
    with pytest.raises(ValueError, match="b: expected size 300"):
        csoftmax.linear_cross_entropy(X, W, b[:-1], y, kernel="tiled")


def test_reference_predictions_follow_the_logits():
    X, W, b, y, _, _ = make_problem(30, 10, 50, np.float32)
    y[3] = -100
    ref = reference.linear_cross_entropy(X, W, b, y, ignore_index=-100, dtype=np.float64)
    Z = X.astype(np.float64) @ W + b
    np.testing.assert_array_equal(ref.predicted, Z.argmax(axis=1))
    np.testing.assert_array_equal(ref.row_correct, (Z.argmax(axis=1) == y) & (y != -100))
    assert ref.accuracy == ref.correct / 29
