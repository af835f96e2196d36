"""Property tests: probabilities sum to 1, losses are >= 0, gradients match finite differences."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import csoftmax
from csoftmax import reference

finite_logits = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def logits_and_labels(draw):
    B = draw(st.integers(1, 8))
    C = draw(st.integers(1, 40))
    Z = draw(arrays(np.float32, (B, C), elements=finite_logits))
    y = draw(arrays(np.int64, (B,), elements=st.integers(0, C - 1)))
    return Z, y


@st.composite
def small_problems(draw):
    B, D, C = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 5))
    unit = st.floats(-2, 2, allow_nan=False, width=32)
    X = draw(arrays(np.float32, (B, D), elements=unit))
    W = draw(arrays(np.float32, (D, C), elements=unit))
    b = draw(arrays(np.float32, (C,), elements=unit))
    y = draw(arrays(np.int64, (B,), elements=st.integers(0, C - 1)))
    return X, W, b, y


SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(logits_and_labels())
def test_probabilities_sum_to_one_and_losses_are_nonnegative(problem):
    Z, y = problem
    P = csoftmax.softmax(Z)
    assert np.all(np.isfinite(P)) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    log_p = csoftmax.log_softmax(Z)
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 1e-6)
    loss = csoftmax.cross_entropy(Z, y, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(loss >= 0)
    np.testing.assert_allclose(loss, reference.cross_entropy(Z.astype(np.float64), y, reduction="none"),
                               rtol=1e-5, atol=1e-3)


@SETTINGS
@given(small_problems(), st.sampled_from(["mean", "sum"]))
def test_gradients_match_finite_differences(problem, reduction):
    X, W, b, y = problem
    got = csoftmax.linear_cross_entropy(X, W, b, y, reduction=reduction, grad_input=True)
    assert got.loss >= 0

    X64, W64, b64 = X.astype(np.float64), W.astype(np.float64), b.astype(np.float64)

    def loss(X_, W_, b_):
        return reference.linear_cross_entropy(X_, W_, b_, y, reduction=reduction, dtype=np.float64).loss

    def numeric_gradient(which):
        args = [X64, W64, b64]
        grad = np.zeros_like(args[which])
        step = 1e-6
        for index in np.ndindex(grad.shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][index] += step
            minus[which][index] -= step
            grad[index] = (loss(*plus) - loss(*minus)) / (2 * step)
        return grad

    for which, name in enumerate(["grad_X", "grad_W", "grad_b"]):
        np.testing.assert_allclose(getattr(got, name), numeric_gradient(which), rtol=1e-3, atol=1e-4, err_msg=name)


@SETTINGS
@given(small_problems())
def test_linear_softmax_rows_sum_to_one(problem):
    X, W, b, _ = problem
    P = csoftmax.linear_softmax(X * 1000, W, b)  # large logits on purpose
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
