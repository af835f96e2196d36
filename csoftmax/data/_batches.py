"""Minibatch iteration over uint8 images, as the chapter's `train_iter` / `test_iter`."""

from __future__ import annotations

import math

import numpy as np

from ._batching import fill_permutation, gather_scaled
from .._validation import positive_int

# Pixels are stored as 0..255 and served as value * PIXEL_SCALE, in float32: 255 maps exactly to 1.0.
# The fused kernel's x_scale must be this same number for both paths to see the same inputs.
PIXEL_SCALE = 1.0 / 255.0


class BatchIterator:
    """Minibatches `(X, y)` of a uint8 image dataset; each `iter()` is a new epoch.

    X is float32 of shape (n, *image_shape) with values in [0, 1] (uint8 × x_scale); y is int64 of shape
    (n,). Batches hold `batch_size` examples, the last one fewer if the dataset does not divide evenly;
    `len()` is the number of batches. With `shuffle`, every epoch visits the examples in a new random
    order (reproducible from `seed`); without it, in storage order.

    Each batch is a freshly allocated array that the caller may keep or modify: the iterator never reuses
    a buffer, so batches collected in a list stay what they were.

    For a fast path that trains on the raw data (e.g. the fused kernel gathering rows itself):

    - `images`: the uint8 data, C-contiguous (N, D) with D = prod(image_shape); `labels`: int64 (N,);
    - `x_scale`: the factor turning pixels into X's values;
    - `next_epoch_order()`: the int64 permutation the next epoch visits, drawn exactly as `iter()` draws
      it (iterating calls it), so `images[order[k*batch_size:(k+1)*batch_size]]` are the rows of batch k
      and the fast path reproduces iterating's shuffles epoch for epoch.

    `images` and `labels` are the dataset's own arrays, shared with the dataset object and not copied:
    do not modify them in place.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int | np.random.SeedSequence | np.random.Generator | None = None,
        image_shape: tuple[int, ...] = (1, 28, 28),
        source: str = "",
        is_sample: bool = False,
    ):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != math.prod(image_shape):
            raise ValueError(
                f"images: expected uint8 of shape (N, {math.prod(image_shape)}), got {images.dtype} {images.shape}"
            )
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels: expected integers of shape ({images.shape[0]},), got {labels.dtype} {labels.shape}"
            )
        batch_size = positive_int(batch_size, "batch_size")
        self.images = np.ascontiguousarray(images)
        self.labels = labels.astype(np.int64, copy=False)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.image_shape = tuple(image_shape)
        self.x_scale = PIXEL_SCALE
        self.source = source
        self.is_sample = is_sample
        self._rng = np.random.default_rng(seed)

    @property
    def num_examples(self) -> int:
        return self.labels.shape[0]

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def next_epoch_order(self) -> np.ndarray:
        """The order of the next epoch's examples (int64, a permutation of 0..N-1); advances the shuffle."""
        if self.shuffle:
            order = np.empty(self.num_examples, dtype=np.int64)
            fill_permutation(order, int(self._rng.integers(0, 2**64, dtype=np.uint64)))
            return order
        return np.arange(self.num_examples, dtype=np.int64)

    def __iter__(self):
        # Drawn here rather than inside the generator, so the epoch's order is fixed by iter() itself.
        return self._batches(self.next_epoch_order())

    def _batches(self, order: np.ndarray):
        for start in range(0, order.shape[0], self.batch_size):
            rows = order[start : start + self.batch_size]
            X = np.empty((rows.shape[0], self.images.shape[1]), dtype=np.float32)
            gather_scaled(self.images, rows, self.x_scale, X)
            yield X.reshape((rows.shape[0], *self.image_shape)), self.labels[rows]

    def __repr__(self) -> str:
        kind = "shuffled" if self.shuffle else "in order"
        return (
            f"BatchIterator({self.num_examples} examples, batch_size={self.batch_size}, {len(self)} batches, "
            f"{kind}, source={self.source!r})"
        )
