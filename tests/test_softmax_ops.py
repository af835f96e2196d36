"""softmax, log_softmax, cross_entropy, linear_softmax and predict against the reference, extremes included."""

import numpy as np
import pytest
from helpers import assert_close, make_problem

import csoftmax
from csoftmax import reference


@pytest.mark.parametrize("C", [1, 2, 10, 16, 17, 100, 1000])
@pytest.mark.parametrize("B", [1, 7, 256])
def test_row_ops_match_reference(B, C):
    rng = np.random.default_rng([B, C])
    Z = (rng.standard_normal((B, C)) * 5).astype(np.float32)
    y = rng.integers(0, C, size=B)
    Z64 = Z.astype(np.float64)
    assert_close(csoftmax.softmax(Z), reference.softmax(Z64), "softmax")
    assert_close(csoftmax.log_softmax(Z), reference.log_softmax(Z64), "log_softmax")
    for reduction in ("mean", "sum", "none"):
        assert_close(csoftmax.cross_entropy(Z, y, reduction=reduction),
                     reference.cross_entropy(Z64, y, reduction=reduction), f"cross_entropy {reduction}")


def test_softmax_along_any_axis_and_shape():
    Z = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        expected = np.moveaxis(reference.softmax(np.moveaxis(Z.astype(np.float64), axis, -1)), -1, axis)
        assert_close(csoftmax.softmax(Z, axis=axis), expected, f"softmax axis={axis}")
    assert_close(csoftmax.softmax(Z[0, 0]), reference.softmax(Z[0, 0].astype(np.float64)), "1-D softmax")


EXTREME_ROWS = [
    [1e4, 0.0, -1e4],            # |z| up to 1e4
    [-1e4, -1e4 + 1, -1e4 + 2],  # all very negative
    [1e4, 1e4, 1e4],             # identical huge logits
    [0.0, 0.0, 0.0],             # identical logits
    [88.8, 0.0, -88.8],          # just past float32 exp overflow
    [50.0, -50.0, -50.0],        # one-hot-like
]


def test_extreme_logits_stay_finite_and_correct():
    Z = np.array(EXTREME_ROWS, dtype=np.float32)
    y = np.array([1, 0, 2, 1, 2, 1])
    Z64 = Z.astype(np.float64)
    P = csoftmax.softmax(Z)
    assert np.all(np.isfinite(P)) and np.allclose(P.sum(axis=1), 1, atol=1e-6)
    assert_close(P, reference.softmax(Z64), "softmax")
    L = csoftmax.log_softmax(Z)
    assert np.all(np.isfinite(L))
    assert_close(L, reference.log_softmax(Z64), "log_softmax")
    loss = csoftmax.cross_entropy(Z, y, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(loss >= 0)
    assert_close(loss, reference.cross_entropy(Z64, y, reduction="none"), "cross_entropy")
    np.testing.assert_allclose(loss[[0, 2, 3]], [1e4, np.log(3), np.log(3)], rtol=1e-6)


def test_naive_chapter_versions_fail_where_stable_ones_do_not():
    """Exercises 1-3: exp overflows and log(0) appears in the chapter's versions, not in the stable ones."""
    Z = np.array([[100.0, 0.0, -100.0]], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = reference.naive_softmax(Z)
    assert np.isnan(naive).any()  # exp(100) = inf in float32, inf / inf = nan
    np.testing.assert_allclose(csoftmax.softmax(Z), [[1.0, 0.0, 0.0]], rtol=1e-6, atol=1e-30)

    probs = reference.softmax(np.array([[0.0, -200.0]], dtype=np.float32))  # exp(-200) underflows to 0
    with np.errstate(divide="ignore"):
        assert np.isinf(reference.naive_cross_entropy(probs, [1])).all()
    assert csoftmax.cross_entropy(np.array([[0.0, -200.0]]), [1]) == pytest.approx(200.0, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
@pytest.mark.parametrize("B, D, C", [(1, 1, 2), (7, 3, 17), (256, 784, 10), (300, 1000, 100)])
def test_linear_softmax_and_predict(B, D, C, dtype):
    X, W, b, y, x_scale, rows = make_problem(B, D, C, dtype, rows=True)
    P_ref = reference.linear_softmax(X, W, b, x_scale=x_scale, rows=rows, dtype=np.float64)
    assert_close(csoftmax.linear_softmax(X, W, b, x_scale, rows=rows), P_ref, "linear_softmax")
    labels = csoftmax.predict(X, W, b, x_scale, rows=rows)
    assert labels.dtype == np.int64
    # where the top two probabilities are not within rounding, the prediction is the reference's
    top2 = np.sort(P_ref, axis=1)[:, -2:] if C > 1 else np.ones((B, 2))
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    np.testing.assert_array_equal(labels[clear], P_ref.argmax(axis=1)[clear])


def test_predict_threshold_abstains_and_top_k_orders():
    X, W, b, _, x_scale, _ = make_problem(200, 20, 10, np.uint8)
    W = W * 50
    P = reference.linear_softmax(X, W, b, x_scale=x_scale, dtype=np.float64)
    abstain = csoftmax.predict(X, W, b, x_scale, threshold=0.6)
    confident = P.max(axis=1) >= 0.6
    assert 0 < confident.sum() < len(P)
    np.testing.assert_array_equal(abstain[~confident], -1)
    np.testing.assert_array_equal(abstain[confident], P.argmax(axis=1)[confident])
    top3 = csoftmax.predict(X, W, b, x_scale, top_k=3)
    np.testing.assert_array_equal(top3, np.argsort(-P, axis=1, kind="stable")[:, :3])
    with pytest.raises(ValueError, match="top_k"):
        csoftmax.predict(X, W, b, x_scale, top_k=11)
    with pytest.raises(ValueError, match="threshold"):
        csoftmax.predict(X, W, b, x_scale, threshold=1.5)


def test_nan_logits_stay_in_their_row():
    """exp of a NaN is NaN (and is computed without converting NaN to an integer)."""
    Z = np.zeros((3, 20), np.float32)
    Z[1, 7] = np.nan
    for op in (csoftmax.softmax, csoftmax.log_softmax):
        out = op(Z)
        assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))
    losses = csoftmax.cross_entropy(Z, [0, 0, 0], reduction="none")
    assert np.isnan(losses[1]) and np.all(np.isfinite(losses[[0, 2]]))


@pytest.mark.parametrize("B, C", [(1, 1), (3, 5000), (5000, 3)])
def test_cross_entropy_writes_one_value_per_row(B, C):
    """The per-row loss output has B entries: no row addresses B x C of them."""
    rng = np.random.default_rng([B, C])
    Z = rng.standard_normal((B, C)).astype(np.float32)
    y = rng.integers(0, C, size=B)
    assert_close(csoftmax.cross_entropy(Z, y, reduction="none"),
                 reference.cross_entropy(Z.astype(np.float64), y, reduction="none"), "cross_entropy")
