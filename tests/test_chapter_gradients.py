"""`l.sum().backward()` without autograd: gradients from the fused kernel for the chapter's model, sgd,
and clear errors for everything else."""

import numpy as np
import pytest
from helpers import assert_close
from training_helpers import chapter_net

from csoftmax import d2l, reference


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    X = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    return X, y


@pytest.fixture
def params():
    d2l.manual_seed(11)
    W = d2l.normal(0, 0.5, size=(784, 10), requires_grad=True)
    b = d2l.normal(0, 0.5, size=(10,), requires_grad=True)
    return W, b


def expected(X, W, b, y, reduction):
    return reference.linear_cross_entropy(X.reshape(len(X), -1), np.asarray(W), np.asarray(b), y,
                                          reduction=reduction, dtype=np.float64)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_backward_gives_the_gradient_of_the_reduced_loss(batch, params, reduction):
    X, y = batch
    W, b = params
    l = d2l.cross_entropy(chapter_net(W, b)(X), y)
    logits = X.reshape(len(X), -1).astype(np.float64) @ W.astype(np.float64) + b
    assert_close(l, reference.cross_entropy(logits, y, reduction="none"), "per-row loss")
    ref = expected(X, W, b, y, reduction)
    total = l.sum() if reduction == "sum" else l.mean()
    assert float(total) == pytest.approx(ref.loss, rel=1e-5)
    total.backward()
    assert_close(W.grad, ref.grad_W, "W.grad")
    assert_close(b.grad, ref.grad_b, "b.grad")


def test_operator_forms_are_recognised(batch, params):
    X, y = batch
    W, b = params
    flat = X.reshape(len(X), -1)
    for y_hat in (d2l.softmax(flat @ W + b), d2l.softmax(b + d2l.matmul(flat, W))):
        W.grad = b.grad = None
        d2l.cross_entropy(y_hat, y).sum().backward()
        assert_close(W.grad, expected(X, W, b, y, "sum").grad_W, "W.grad")


def test_gradients_accumulate_as_in_pytorch(batch, params):
    X, y = batch
    W, b = params
    net = chapter_net(W, b)
    d2l.cross_entropy(net(X[:32]), y[:32]).sum().backward()
    d2l.cross_entropy(net(X[32:]), y[32:]).sum().backward()
    assert_close(W.grad, expected(X, W, b, y, "sum").grad_W, "W.grad")


def test_gradient_is_taken_at_the_forward_values(batch, params):
    X, y = batch
    W, b = params
    ref = expected(X, W, b, y, "sum")
    l = d2l.cross_entropy(chapter_net(W, b)(X), y)
    W -= 1.0  # changed between the forward pass and backward()
    l.sum().backward()
    assert_close(W.grad, ref.grad_W, "W.grad")


def test_the_loss_stays_finite_where_the_chapters_is_infinite(params):
    """Exercises 1-3 at the level of the chapter's program: huge logits overflow exp in the chapter's
    softmax and make its -log(y_hat) infinite; the model's loss comes from the logits instead."""
    W, b = params
    X = np.full((2, 784), 10.0, dtype=np.float32)  # logits in the hundreds
    y = np.array([0, 1])
    y_hat = chapter_net(W, b)(X)
    logits = X.astype(np.float64) @ W.astype(np.float64) + b
    assert np.abs(logits).max() > 100
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(reference.naive_softmax(logits.astype(np.float32))))
    assert np.all(np.isfinite(y_hat))
    loss = d2l.cross_entropy(y_hat, y)
    np.testing.assert_allclose(loss, reference.cross_entropy(logits, y, reduction="none"), rtol=1e-5)
    with np.errstate(divide="ignore"):
        chapter_loss = d2l.cross_entropy(np.asarray(y_hat), y)  # plain probabilities: the chapter's -log
    assert np.isinf(chapter_loss).any()
    loss.sum().backward()
    assert np.all(np.isfinite(W.grad))


def test_sgd_steps_against_the_summed_gradient_and_zeroes_it(batch, params):
    X, y = batch
    W, b = params
    W0, b0 = W.copy(), b.copy()
    d2l.cross_entropy(chapter_net(W, b)(X), y).sum().backward()
    grad_W, grad_b = W.grad.copy(), b.grad.copy()
    d2l.Updater([W, b], 0.1)(len(X))
    assert isinstance(W, d2l.Parameter) and W.requires_grad
    np.testing.assert_allclose(W, W0 - 0.1 * grad_W / len(X), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b, b0 - 0.1 * grad_b / len(X), rtol=1e-6, atol=1e-7)
    assert not W.grad.any() and not b.grad.any()


def test_sgd_without_a_gradient_says_what_to_do(params):
    W, b = params
    with pytest.raises(RuntimeError, match=r"has no gradient.*backward\(\)"):
        d2l.sgd([W, b], 0.1, 256)
    with pytest.raises(RuntimeError, match="has no gradient"):
        d2l.sgd([np.zeros(3)], 0.1, 256)


def test_backward_of_other_losses_says_what_can_be_differentiated(batch, params):
    X, y = batch
    W, b = params
    flat = X.reshape(len(X), -1)
    net = chapter_net(W, b)
    with np.errstate(invalid="ignore"):  # -log of logits, some negative: nan, as the chapter's would give
        logits_loss = d2l.cross_entropy(flat @ W + b, y)
    cases = {
        "y_hat was not computed": d2l.cross_entropy(np.full((64, 10), 0.1), y),
        "without the bias b": d2l.cross_entropy(d2l.softmax(flat @ W), y),
        "take its softmax first": logits_loss,
        "np.multiply was applied": d2l.cross_entropy(net(X), y) * 2,
        "slice or copy": d2l.cross_entropy(net(X), y)[:10],
    }
    for because, loss in cases.items():
        with pytest.raises(RuntimeError, match=f"{because}.*csoftmax.d2l differentiates one model"):
            loss.sum().backward()
    with pytest.raises(RuntimeError, match=r"call l.sum\(\).backward\(\)"):
        d2l.cross_entropy(net(X), y).backward()
    assert W.grad is None and b.grad is None


def test_other_operations_give_plain_arrays(batch, params):
    X, y = batch
    W, b = params
    y_hat = chapter_net(W, b)(X)
    assert type(y_hat * 2) is np.ndarray
    assert type(W + 1) is np.ndarray
    assert type(d2l.exp(W)) is np.ndarray
    loss = d2l.cross_entropy(y_hat, y)
    assert type(loss.sum(axis=0, keepdims=True)) is np.ndarray
    assert float(loss.sum()) == pytest.approx(float(np.asarray(loss, np.float64).sum()), rel=1e-5)


def test_views_of_a_parameter_do_not_learn(params):
    W, _ = params
    assert not W.T.requires_grad and W.T.grad is None
    assert not W.copy().requires_grad


def test_cross_entropy_checks_shapes():
    with pytest.raises(ValueError, match=r"y_hat \(n, classes\) and y \(n,\)"):
        d2l.cross_entropy(np.full((3, 2), 0.5), np.array([0, 1]))


@pytest.mark.parametrize("label", [-1, 2, 10**12])
def test_cross_entropy_refuses_labels_outside_the_classes(label):
    """-1 used to index the last class (NumPy's negative indexing): a silent wrong loss."""
    y_hat = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=rf"y: label {label} at position 1 is outside \[0, 2\)"):
        d2l.cross_entropy(y_hat, np.array([0, label, 1]))
