"""The chapter's small demos give the chapter's outputs, and its building blocks behave as the book's.

Expected values are the book's printed outputs (or follow from its definitions), not outputs of this code.
"""

import numpy as np
import pytest
from training_helpers import chapter_net, full_data, iterators, tiny_iterators

from csoftmax import d2l, reference
from csoftmax import SoftmaxRegression


def test_sums_with_keepdims():
    X = d2l.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(X.sum(0, keepdims=True), [[5.0, 7.0, 9.0]])
    np.testing.assert_array_equal(X.sum(1, keepdims=True), [[6.0], [15.0]])


def test_softmax_rows_are_probabilities_summing_to_one():
    d2l.manual_seed(0)
    X = d2l.normal(0, 1, (2, 5))
    X_prob = d2l.softmax(X)
    assert X_prob.shape == (2, 5)
    assert np.all(X_prob > 0)
    np.testing.assert_allclose(X_prob.sum(1), [1.0, 1.0], rtol=1e-6)
    # On such inputs the chapter's exp(X) / sum exp(X) gives the same numbers.
    np.testing.assert_allclose(X_prob, reference.naive_softmax(X.astype(np.float64)), rtol=1e-6)


def test_picking_the_probability_of_the_true_label():
    y = d2l.tensor([0, 2])
    y_hat = d2l.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    np.testing.assert_allclose(y_hat[[0, 1], y], [0.1, 0.5])


def test_cross_entropy_of_probabilities():
    y = d2l.tensor([0, 2])
    y_hat = d2l.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    np.testing.assert_allclose(d2l.cross_entropy(y_hat, y), [2.3026, 0.6931], atol=5e-5)


def test_accuracy_is_a_count():
    y = d2l.tensor([0, 2])
    y_hat = d2l.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    assert d2l.accuracy(y_hat, y) == 1.0  # the second row is right: the chapter's 0.5 once divided by len(y)
    # a count, not a rate: 2 of these 3 rows are right (argmax 1, 0, 0 against 1, 0, 2)
    y3 = d2l.tensor([1, 0, 2])
    y_hat3 = d2l.tensor([[0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.6, 0.3, 0.1]])
    assert d2l.accuracy(y_hat3, y3) == 2.0
    assert d2l.accuracy(np.array([2, 2]), y) == 1.0  # labels instead of scores


def test_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        d2l.accuracy(np.zeros((3, 4)), np.array([0, 1]))


def test_accumulator():
    metric = d2l.Accumulator(2)
    metric.add(3, 10)
    metric.add(np.float32(1.5), np.int64(6))
    assert metric[0] == 4.5 and metric[1] == 16.0 and metric[:] == [4.5, 16.0]
    metric.reset()
    assert metric.data == [0.0, 0.0]
    with pytest.raises(ValueError, match="expected 2 values, got 3"):
        metric.add(1, 2, 3)


def _chapter_parameters(seed):
    d2l.manual_seed(seed)
    W = d2l.normal(0, 0.01, size=(784, 10), requires_grad=True)
    b = d2l.zeros(10, requires_grad=True)
    return W, b, chapter_net(W, b)


def test_accuracy_before_training_is_chance():
    """The chapter evaluates the untrained model on the test set: about 0.1 for ten classes."""
    _, test_iter = iterators(full_data())
    _, _, net = _chapter_parameters(seed=0)
    assert abs(d2l.evaluate_accuracy(net, test_iter) - 0.1) < 0.05


def test_parameters_start_as_in_the_chapter():
    W, b, _ = _chapter_parameters(seed=1)
    assert isinstance(W, d2l.Parameter) and W.requires_grad and W.grad is None
    assert W.shape == (784, 10) and W.dtype == np.float32
    assert abs(float(W.std()) - 0.01) < 0.0005 and abs(float(W.mean())) < 0.001
    np.testing.assert_array_equal(b, np.zeros(10, np.float32))
    assert "requires_grad=True" in repr(b)


def test_manual_seed_gives_the_fast_paths_initial_weights():
    for seed in (0, 7):
        W, b, _ = _chapter_parameters(seed)
        model = SoftmaxRegression(seed=seed)
        np.testing.assert_array_equal(W, model.W)
        np.testing.assert_array_equal(b, model.b)


def test_chapter_epochs_match_the_fast_path():
    """train_epoch_ch3 on the chapter's model and SoftmaxRegression.fit are the same recipe."""
    train_iter, test_iter = tiny_iterators(seed=3)
    W, b, net = _chapter_parameters(seed=3)
    history = d2l.train_ch3(net, train_iter, test_iter, d2l.cross_entropy, 3, d2l.Updater([W, b], 0.1),
                            animator=False)
    train_iter, test_iter = tiny_iterators(seed=3)
    model = SoftmaxRegression(seed=3)
    fast = model.fit(train_iter, test_iter, 3, 0.1)
    for chapter, fused in zip(history, fast, strict=True):
        assert chapter.epoch == fused.epoch
        assert chapter.train_loss == pytest.approx(fused.train_loss, rel=1e-4)
        assert (chapter.train_acc, chapter.test_acc) == (fused.train_acc, fused.test_acc)
    np.testing.assert_allclose(W, model.W, atol=1e-5)
    np.testing.assert_allclose(b, model.b, atol=1e-5)


def test_train_ch3_reports_each_epoch_to_the_callback_and_the_animator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_iter, test_iter = tiny_iterators()
    W, b, net = _chapter_parameters(seed=0)
    seen = []
    history = d2l.train_ch3(net, train_iter, test_iter, d2l.cross_entropy, 2, d2l.Updater([W, b], 0.1),
                            callback=seen.append)
    assert seen == history and [m.epoch for m in history] == [1, 2]
    assert all(m.seconds > 0 and 0 <= m.train_acc <= 1 and 0 <= m.test_acc <= 1 for m in history)
    assert (tmp_path / "csoftmax-figures" / "training-curves.png").stat().st_size > 0


def test_evaluate_and_train_reject_empty_iterators():
    W, b, net = _chapter_parameters(seed=0)
    with pytest.raises(ValueError, match="no examples"):
        d2l.evaluate_accuracy(net, [])
    with pytest.raises(ValueError, match="no examples"):
        d2l.train_epoch_ch3(net, [], d2l.cross_entropy, d2l.Updater([W, b], 0.1))
