"""SoftmaxRegression: the chapter's initialisation, the fused and numpy backends of the same recipe, prediction,
and its .npz files."""

import zipfile

import numpy as np
import pytest
from helpers import assert_close
from training_helpers import (
    EPOCHS,
    LR,
    assert_meets_the_issue,
    assert_same_run,
    full_data,
    iterators,
    tiny_iterators,
)

import csoftmax
from csoftmax import d2l, reference
from csoftmax.models.softmax_regression import ModelFileError, SoftmaxRegression


def test_initialisation_is_the_chapters_and_seeded():
    model = SoftmaxRegression(seed=0)
    assert model.W.shape == (784, 10) and model.W.dtype == np.float32
    assert abs(float(model.W.std()) - 0.01) < 0.0005
    np.testing.assert_array_equal(model.b, np.zeros(10, np.float32))
    np.testing.assert_array_equal(SoftmaxRegression(seed=0).W, model.W)
    assert not np.array_equal(SoftmaxRegression(seed=1).W, model.W)
    assert (model.num_inputs, model.num_outputs) == (784, 10)
    assert SoftmaxRegression(5, 3).W.shape == (5, 3)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("10", TypeError)])
def test_bad_sizes_are_rejected(bad, error):
    with pytest.raises(error, match="num_inputs"):
        SoftmaxRegression(bad)
    with pytest.raises(error, match="num_outputs"):
        SoftmaxRegression(784, bad)


def test_fit_rejects_bad_arguments():
    train_iter, test_iter = tiny_iterators()
    model = SoftmaxRegression()
    with pytest.raises(ValueError, match="backend: expected one of"):
        model.fit(train_iter, test_iter, backend="torch")
    with pytest.raises(ValueError, match="lr: expected a positive finite number"):
        model.fit(train_iter, test_iter, lr=0.0)
    with pytest.raises(ValueError, match="num_epochs"):
        model.fit(train_iter, test_iter, num_epochs=0)
    with pytest.raises(TypeError, match="train_iter: expected a csoftmax data iterator.*list lacks images"):
        model.fit([(np.zeros((2, 784), np.float32), np.zeros(2, np.int64))], test_iter)
    with pytest.raises(ValueError, match="images have 784 values, the model takes 100"):
        SoftmaxRegression(100).fit(train_iter, test_iter)


@pytest.mark.parametrize("backend", ["fused", "numpy"])
def test_fit_learns_the_tiny_problem(backend):
    train_iter, test_iter = tiny_iterators()
    seen = []
    history = SoftmaxRegression(seed=0).fit(train_iter, test_iter, 5, 0.5, backend=backend, callback=seen.append)
    assert seen == history and [m.epoch for m in history] == [1, 2, 3, 4, 5]
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].test_acc > 0.9


def test_an_epoch_is_the_chapters_sgd_over_the_iterators_batches():
    """One fused epoch equals the chapter's loop written out: for each of the iterator's batches, step
    against the reference gradient of the mean loss."""
    train_iter, test_iter = tiny_iterators(seed=4)
    model = SoftmaxRegression(seed=4)
    W, b = model.W.astype(np.float64), model.b.astype(np.float64)
    check_iter, _ = tiny_iterators(seed=4)
    loss_sum = correct = 0.0
    for X, y in check_iter:
        step = reference.linear_cross_entropy(X.reshape(len(X), -1), W, b, y, dtype=np.float64)
        W, b = W - 0.1 * step.grad_W, b - 0.1 * step.grad_b
        loss_sum, correct = loss_sum + step.loss * len(y), correct + step.correct
    (metrics,) = model.fit(train_iter, test_iter, 1, 0.1)
    assert_close(model.W, W, "W")
    assert_close(model.b, b, "b")
    assert metrics.train_loss == pytest.approx(loss_sum / 300, rel=1e-5)
    assert metrics.train_acc == correct / 300


def test_progress_reports_pieces_of_the_same_epoch():
    runs = {}
    for with_progress in (False, True):
        train_iter, test_iter = tiny_iterators(n_train=1000, batch_size=16)
        model = SoftmaxRegression(seed=0)
        calls = []
        history = model.fit(train_iter, test_iter, 2, 0.1,
                            progress=(lambda *args: calls.append(args)) if with_progress else None)
        runs[with_progress] = model, history, calls
    (plain, plain_history, _), (stepped, stepped_history, calls) = runs[False], runs[True]
    np.testing.assert_array_equal(stepped.W, plain.W)  # the same minibatches, whatever the pieces
    assert [(m.train_acc, m.test_acc) for m in stepped_history] == [(m.train_acc, m.test_acc) for m in plain_history]
    assert stepped_history[-1].train_loss == pytest.approx(plain_history[-1].train_loss, rel=1e-12)
    for epoch in (1, 2):
        done = [d for e, d, total in calls if e == epoch]
        assert done == sorted(done) and done[-1] == 1000 and len(done) > 10
        assert all(d % 16 == 0 for d in done[:-1])  # pieces end between minibatches
    assert {total for _, _, total in calls} == {1000}


def test_fused_and_numpy_backends_run_the_same_recipe_on_the_real_data(chapter_run):
    """The acceptance test of the fast path: 10 epochs of the chapter's recipe on Fashion-MNIST, fused (the
    session's shared run) and through the NumPy reference, from the same seed, agree epoch for epoch and
    reach the issue's numbers."""
    fused, fused_epochs = chapter_run.model, chapter_run.epochs
    train_iter, test_iter = iterators(full_data(), seed=0)
    numpy_model = SoftmaxRegression(seed=0)
    numpy_epochs = numpy_model.fit(train_iter, test_iter, EPOCHS, LR, backend="numpy")
    assert_meets_the_issue(fused_epochs)
    assert_meets_the_issue(numpy_epochs)
    assert_same_run(fused_epochs, numpy_epochs)
    np.testing.assert_allclose(fused.W, numpy_model.W, atol=2e-4)
    _, test_iter = iterators(full_data())
    assert fused.evaluate(test_iter) == fused_epochs[-1].test_acc
    assert d2l.evaluate_accuracy(fused, test_iter) == pytest.approx(fused.evaluate(test_iter), abs=2e-4)


def test_predictions_of_uint8_images_and_float_batches_agree():
    _, test_iter = tiny_iterators()
    model = SoftmaxRegression(seed=0)
    model.fit(*tiny_iterators(), 3, 0.5)
    X, y = next(iter(test_iter))
    images = test_iter.images[: len(y)]
    P = model.predict_proba(X)
    np.testing.assert_allclose(model(images), P, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.predict(images), P.argmax(axis=1))
    np.testing.assert_array_equal(model.predict(images), csoftmax.predict(images, model.W, model.b, 1 / 255))
    unsure = model.predict(images, threshold=0.9)
    np.testing.assert_array_equal(unsure == -1, P.max(axis=1) < 0.9)
    assert model.predict(X, top_k=3).shape == (len(y), 3)
    with pytest.raises(ValueError, match="784 values each, got shape"):
        model.predict(np.zeros((2, 10), np.uint8))


def test_save_and_load_round_trip(tmp_path):
    model = SoftmaxRegression(seed=3)
    model.fit(*tiny_iterators(), 1, 0.1)
    path = tmp_path / "weights.model"  # any name: nothing is appended
    model.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["W", "b", "format"]
        assert archive["W"].shape == (784, 10)
    loaded = SoftmaxRegression.load(path)
    np.testing.assert_array_equal(loaded.W, model.W)
    np.testing.assert_array_equal(loaded.b, model.b)
    assert loaded.W.base is not None and loaded._wt.flags.c_contiguous  # class-major inside, as trained


def _write_npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


GOOD = {"W": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32), "format": np.int64(1)}


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"W": GOOD["W"], "b": GOOD["b"]}, "expected the arrays"),
        ({**GOOD, "extra": np.zeros(1)}, "expected the arrays"),
        ({**GOOD, "format": np.int64(99)}, "unknown model format"),
        ({**GOOD, "W": np.zeros((784, 10), np.float64)}, "W must be float32"),
        ({**GOOD, "W": np.zeros(784, np.float32)}, "W must be float32"),
        ({**GOOD, "b": np.zeros(9, np.float32)}, r"b must be float32 \(10,\)"),
        ({**GOOD, "b": np.full(10, np.nan, np.float32)}, "non-finite"),
        ({**GOOD, "W": np.array([None] * 10, dtype=object)}, "W must be float32"),
    ],
)
def test_load_rejects_malformed_models(tmp_path, arrays, message):
    path = _write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match=message):
        SoftmaxRegression.load(path)


def test_load_rejects_files_that_are_not_models(tmp_path):
    model_path = tmp_path / "model.npz"
    SoftmaxRegression(seed=0).save(model_path)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(model_path.read_bytes()[:2000])
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    for path in (truncated, text, single):
        with pytest.raises(ModelFileError, match=str(path.name)):
            SoftmaxRegression.load(path)
    with pytest.raises(FileNotFoundError):
        SoftmaxRegression.load(tmp_path / "missing.npz")
    assert issubclass(ModelFileError, ValueError) and zipfile.is_zipfile(model_path)
