"""Minibatch iterators, the Cython batch assembly under them, and the text labels."""

import numpy as np
import pytest

from csoftmax.data._batching import gather_scaled
from csoftmax.data import (
    FASHION_MNIST_LABELS,
    BatchIterator,
    get_fashion_mnist_labels,
    load_data_fashion_mnist,
)

N = 103  # not a multiple of the batch size: the last batch is partial


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (N, 784), dtype=np.uint8)


@pytest.fixture
def labels():
    return np.arange(N) % 10


def collect(iterator):
    """All batches of one epoch, as (list of X, list of y)."""
    batches = list(iterator)
    return [X for X, _ in batches], [y for _, y in batches]


def test_batches_have_the_chapter_shapes_dtypes_and_ranges(images, labels):
    iterator = BatchIterator(images, labels, 25, shuffle=True, seed=0)
    Xs, ys = collect(iterator)
    assert len(iterator) == len(Xs) == 5
    assert [len(y) for y in ys] == [25, 25, 25, 25, 3]
    for X, y in zip(Xs, ys, strict=True):
        assert X.dtype == np.float32 and X.shape == (len(y), 1, 28, 28) and X.flags.c_contiguous
        assert y.dtype == np.int64
        assert X.min() >= 0.0 and X.max() <= 1.0
    assert max(X.max() for X in Xs) == 1.0  # 255 maps to exactly 1


def test_each_batch_is_the_scaled_rows_it_claims(images, labels):
    iterator = BatchIterator(images, labels, 16, shuffle=True, seed=1)
    for X, y in iterator:
        # Find each row by content: X must be images[row] * x_scale in float32, paired with labels[row].
        rows = [np.flatnonzero((images == np.rint(x.ravel() * 255)).all(axis=1))[0] for x in X]
        expected = images[rows].astype(np.float32) * np.float32(iterator.x_scale)
        np.testing.assert_array_equal(X.reshape(len(y), -1), expected)
        np.testing.assert_array_equal(y, labels[rows])


def test_train_order_reshuffles_every_epoch_and_covers_each_example_once(images, labels):
    iterator = BatchIterator(images, labels, 10, shuffle=True, seed=0)
    epochs = [np.concatenate(collect(iterator)[1]) for _ in range(3)]
    orders = [iterator.next_epoch_order() for _ in range(3)]
    for order in orders:
        assert order.dtype == np.int64 and np.array_equal(np.sort(order), np.arange(N))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    for labels_seen in epochs:
        assert np.array_equal(np.bincount(labels_seen), np.bincount(labels))
    assert not all(np.array_equal(epochs[0], e) for e in epochs[1:])


def test_the_same_seed_gives_the_same_epochs(images, labels):
    first, second = (BatchIterator(images, labels, 32, shuffle=True, seed=42) for _ in range(2))
    for _ in range(2):
        for (X1, y1), (X2, y2) in zip(first, second, strict=True):
            np.testing.assert_array_equal(X1, X2)
            np.testing.assert_array_equal(y1, y2)
    other = BatchIterator(images, labels, 32, shuffle=True, seed=43)
    assert not np.array_equal(other.next_epoch_order(), first.next_epoch_order())


def test_next_epoch_order_is_what_iteration_visits(images, labels):
    """The fused trainer's contract: images[order] batches reproduce iterating, epoch for epoch."""
    iterating = BatchIterator(images, labels, 20, shuffle=True, seed=7)
    fast_path = BatchIterator(images, labels, 20, shuffle=True, seed=7)
    for _ in range(3):
        order = fast_path.next_epoch_order()
        for k, (X, y) in enumerate(iterating):
            rows = order[k * 20 : (k + 1) * 20]
            np.testing.assert_array_equal(
                X.reshape(len(rows), -1), fast_path.images[rows] * np.float32(fast_path.x_scale)
            )
            np.testing.assert_array_equal(y, fast_path.labels[rows])


def test_test_order_is_the_storage_order_every_epoch(images, labels):
    iterator = BatchIterator(images, labels, 50, shuffle=False)
    for _ in range(2):
        Xs, ys = collect(iterator)
        np.testing.assert_array_equal(np.concatenate(ys), labels)
        np.testing.assert_array_equal(np.concatenate(Xs).reshape(N, -1), images * np.float32(iterator.x_scale))
    np.testing.assert_array_equal(iterator.next_epoch_order(), np.arange(N))


def test_batches_are_fresh_arrays_that_stay_as_they_were(images, labels):
    iterator = BatchIterator(images, labels, 10, shuffle=True, seed=0)
    kept = list(iterator)
    snapshot = [(X.copy(), y.copy()) for X, y in kept]
    kept[0][0][:] = -1.0  # a user modifying one batch touches nothing else
    list(iterator)  # another epoch
    for (X, y), (X0, y0) in zip(kept[1:], snapshot[1:], strict=True):
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
    assert len({id(X) for X, _ in kept}) == len(kept)
    np.testing.assert_array_equal(iterator.images, images)  # the source data was not touched


def test_raw_data_attributes_for_the_fused_trainer(images, labels):
    iterator = BatchIterator(images, labels.astype(np.uint8), 8, shuffle=False, source="somewhere")
    assert iterator.images.dtype == np.uint8 and iterator.images.shape == (N, 784)
    assert iterator.images.flags.c_contiguous
    assert iterator.labels.dtype == np.int64 and iterator.labels.shape == (N,)
    assert iterator.batch_size == 8 and iterator.num_examples == N and iterator.source == "somewhere"
    assert iterator.x_scale == 1 / 255
    assert "103 examples" in repr(iterator) and "13 batches" in repr(iterator)


def test_non_contiguous_images_are_made_contiguous(images, labels):
    wide = np.repeat(images, 2, axis=1)[:, ::2]
    iterator = BatchIterator(wide, labels, 10, shuffle=False)
    assert iterator.images.flags.c_contiguous
    np.testing.assert_array_equal(next(iter(iterator))[0].reshape(10, -1), images[:10] * np.float32(1 / 255))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size: expected a positive integer, got 0"),
        ({"batch_size": -5}, ValueError, "batch_size: expected a positive integer"),
        ({"batch_size": 2.5}, TypeError, "batch_size: expected an integer, got float"),
        ({"batch_size": True}, TypeError, "batch_size: expected an integer, got bool"),
        ({"images": np.zeros((N, 784), np.float32)}, ValueError, r"images: expected uint8 of shape \(N, 784\)"),
        ({"images": np.zeros((N, 28, 28), np.uint8)}, ValueError, "images: expected uint8"),
        ({"labels": np.zeros(N - 1, np.int64)}, ValueError, r"labels: expected integers of shape \(103,\)"),
        ({"labels": np.zeros(N, np.float32)}, ValueError, "labels: expected integers"),
    ],
)
def test_bad_arguments_are_rejected(images, labels, kwargs, error, message):
    arguments = {"images": images, "labels": labels, "batch_size": 10, **kwargs}
    with pytest.raises(error, match=message):
        BatchIterator(**arguments, shuffle=True)


def test_an_empty_dataset_has_no_batches():
    iterator = BatchIterator(np.zeros((0, 784), np.uint8), np.zeros(0, np.int64), 4, shuffle=True)
    assert len(iterator) == 0 and list(iterator) == []


def test_gather_scaled_never_reads_out_of_bounds(images):
    out = np.empty((2, 784), np.float32)
    for bad_row in (N, -1, 2**40):
        with pytest.raises(IndexError, match=f"index {bad_row} at position 1 is outside"):
            gather_scaled(images, np.array([0, bad_row], dtype=np.int64), 1.0, out)
    with pytest.raises(ValueError, match="out: expected at least"):
        gather_scaled(images, np.array([0, 1, 2], dtype=np.int64), 1.0, out)
    with pytest.raises(ValueError, match="out: expected at least"):
        gather_scaled(images, np.array([0], dtype=np.int64), 1.0, np.empty((1, 783), np.float32))


def test_load_data_fashion_mnist_on_the_sample():
    train_iter, test_iter = load_data_fashion_mnist(256, sample=True, seed=0)
    assert (len(train_iter), len(test_iter)) == (24, 4)  # 6000 = 23·256 + 112; 1000 = 3·256 + 232
    assert train_iter.shuffle and not test_iter.shuffle
    assert train_iter.is_sample and train_iter.source == test_iter.source and "sample" in train_iter.source
    assert train_iter.images.shape == (6000, 784) and test_iter.labels.shape == (1000,)
    again, _ = load_data_fashion_mnist(256, sample=True, seed=0)
    np.testing.assert_array_equal(train_iter.next_epoch_order(), again.next_epoch_order())


def test_text_labels_in_the_chapter_order():
    assert get_fashion_mnist_labels(range(10)) == [
        "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
    ]  # fmt: skip
    assert get_fashion_mnist_labels(np.array([9, 0, 9], dtype=np.int64)) == ["ankle boot", "t-shirt", "ankle boot"]
    assert get_fashion_mnist_labels(np.array([3], dtype=np.uint8)) == ["dress"]
    assert get_fashion_mnist_labels([]) == []
    assert len(FASHION_MNIST_LABELS) == 10


@pytest.mark.parametrize(
    "labels, error, message",
    [
        ([10], ValueError, "10 is not a Fashion-MNIST class"),
        ([-1], ValueError, "-1 is not"),
        ([0.5], TypeError, "integers"),
    ],
)
def test_text_labels_reject_what_is_not_a_class(labels, error, message):
    with pytest.raises(error, match=message):
        get_fashion_mnist_labels(labels)
