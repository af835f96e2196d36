"""The NumPy reference of the logistic-regression objective against independent computations: central
finite differences for the gradient and the Hessian-vector product, the textbook formulas (log of a
probability, fine at moderate logits) for the loss, and the binomial case as a two-class multinomial."""

import numpy as np
import pytest

from csoftmax import reference


def problem(n, d, K, *, seed=0, intercept=True, weights=True, logit_scale=1.0):
    """Random X, labels, weights and parameters; K is the number of coef rows (1: binomial)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, max(K, 2), n)
    w = rng.uniform(0.5, 2.0, n) if weights else None
    coef = rng.normal(size=(K, d)) * logit_scale
    b = rng.normal(size=K) if intercept else None
    return X, y, w, coef, b


def textbook_loss(X, y, w, coef, b, x_scale=1.0):
    """sum_i w_i * -log p(y_i | x_i), with the probabilities formed first (the chapter's way)."""
    Z = x_scale * X @ coef.T + (0 if b is None else b)
    w = np.ones(len(X)) if w is None else w
    if coef.shape[0] == 1:
        p = 1 / (1 + np.exp(-Z[:, 0]))
        return float(-(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum())
    P = reference.naive_softmax(Z)
    return float(-(w * np.log(P[np.arange(len(y)), y])).sum())


def central_difference(f, theta, h=1e-6):
    """The derivative of f (scalar or array valued) along each coordinate of theta."""
    grads = []
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step.flat[j] = h
        grads.append((np.asarray(f(theta + step)) - np.asarray(f(theta - step))) / (2 * h))
    return np.array(grads)


@pytest.mark.parametrize("K", [1, 3, 10])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("weights", [True, False])
def test_loss_matches_the_textbook_formula(K, intercept, weights):
    X, y, w, coef, b = problem(40, 6, K, intercept=intercept, weights=weights)
    loss, _, _ = reference.logistic_loss_gradient(X, y, w, coef, b, x_scale=0.5)
    assert loss == pytest.approx(textbook_loss(X, y, w, coef, b, x_scale=0.5), rel=1e-12)


@pytest.mark.parametrize("K", [1, 3, 10])
@pytest.mark.parametrize("intercept", [True, False])
def test_gradient_matches_finite_differences(K, intercept):
    X, y, w, coef, b = problem(30, 5, K, intercept=intercept)
    _, grad_coef, grad_b = reference.logistic_loss_gradient(X, y, w, coef, b, x_scale=0.5)

    def loss_at_coef(c):
        return reference.logistic_loss_gradient(X, y, w, c.reshape(coef.shape), b, x_scale=0.5)[0]

    np.testing.assert_allclose(grad_coef.ravel(), central_difference(loss_at_coef, coef.ravel()), rtol=1e-6, atol=1e-7)
    if intercept:
        np.testing.assert_allclose(
            grad_b, central_difference(lambda v: reference.logistic_loss_gradient(X, y, w, coef, v, x_scale=0.5)[0], b),
            rtol=1e-6, atol=1e-7,
        )
    else:
        assert grad_b is None


def test_binomial_is_the_two_class_multinomial_with_a_zero_row():
    X, y, w, coef, b = problem(50, 4, 1)
    loss, grad_coef, grad_b = reference.logistic_loss_gradient(X, y, w, coef, b)
    loss2, grad2, grad_b2 = reference.logistic_loss_gradient(
        X, y, w, np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], b])
    )
    assert loss == pytest.approx(loss2, rel=1e-13)
    np.testing.assert_allclose(grad_coef[0], grad2[1], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad_b, grad_b2[1:], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("intercept", [True, False])
def test_hessian_product_matches_finite_differences_of_the_gradient(K, intercept):
    X, y, w, coef, b = problem(30, 5, K, intercept=intercept, seed=3)
    rng = np.random.default_rng(7)
    V = rng.normal(size=coef.shape)
    Vb = rng.normal(size=K) if intercept else None
    hv, hv_b = reference.logistic_hessian_product(X, w, coef, b, V, Vb, x_scale=0.5)

    def gradient_along(t):
        _, g, g_b = reference.logistic_loss_gradient(
            X, y, w, coef + t[0] * V, None if b is None else b + t[0] * Vb, x_scale=0.5
        )
        return np.concatenate([g.ravel(), [] if g_b is None else g_b])

    numeric = central_difference(gradient_along, np.zeros(1), h=1e-5)[0]
    np.testing.assert_allclose(hv.ravel(), numeric[: coef.size], rtol=1e-6, atol=1e-7)
    if intercept:
        np.testing.assert_allclose(hv_b, numeric[coef.size :], rtol=1e-6, atol=1e-7)
    else:
        assert hv_b is None


def test_extreme_logits_give_exact_finite_losses():
    # z = +-1e4: exp(z) overflows unless shifted; the losses are 1e4 (wrong side) or exp(-1e4) = 0.
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    y = np.array([0, 1, 1, 0])
    loss, grad, _ = reference.logistic_loss_gradient(X, y, None, np.array([[1e4]]), None)
    assert loss == 2e4
    np.testing.assert_array_equal(grad, [[2.0]])  # rows 0 and 1 each push by +1, rows 2 and 3 by 0
    coef = np.array([[1e4], [0.0], [-1e4]])
    loss, grad, _ = reference.logistic_loss_gradient(X, np.array([0, 2, 1, 1]), None, coef, None)
    assert loss == 2e4  # rows 0 and 1 are right with certainty, rows 2 and 3 wrong by 1e4
    assert np.all(np.isfinite(grad))


def test_hessian_product_needs_a_matching_intercept_direction():
    X, _, w, coef, b = problem(10, 3, 3)
    with pytest.raises(ValueError, match="V_intercept"):
        reference.logistic_hessian_product(X, w, coef, b, coef, None)


@pytest.mark.parametrize("K, label", [(1, 2), (3, 3), (3, -1)])
def test_labels_outside_the_classes_are_rejected(K, label):
    X, y, w, coef, b = problem(10, 3, K)
    y[4] = label
    with pytest.raises(ValueError, match="label"):
        reference.logistic_loss_gradient(X, y, w, coef, b)
