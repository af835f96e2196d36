"""Fashion-MNIST: find, fetch, verify and parse the real dataset, and iterate over it in minibatches.

    train_iter, test_iter = load_data_fashion_mnist(256)

Where the data comes from, in order (the first complete copy wins):

1. `data_dir=` — used alone: missing files are downloaded into it, or the call fails; a corrupt file
   raises;
2. the directory in $CSOFTMAX_DATA;
3. the cache, `$CSOFTMAX_CACHE_DIR` or the platform's cache directory + /csoftmax/fashion-mnist;
4. /usr/share/datasets/fashion-mnist (Debian/Ubuntu: `apt-get install dataset-fashion-mnist`);
5. a download from the official mirrors into the cache ($CSOFTMAX_MIRRORS: base URLs separated by
   spaces; set it empty to never download);
6. otherwise the embedded sample (6,000 train / 1,000 test images, stratified), with a
   SampleDataWarning saying so. `sample=True` asks for the sample, `sample=False` refuses it.

Each file may be gzip-compressed, xz-compressed or plain; it is used only if the SHA-256 of its
decompressed content matches the published table. A download is verified before it is renamed into
place, so a partial or wrong file never lands in the cache. Every dataset and iterator says where its
data came from (`source`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ._batches import PIXEL_SCALE, BatchIterator
from ._errors import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    DataWarning,
    DownloadError,
    FashionMNISTError,
    SampleDataWarning,
    warn,
)
from ._files import FoundData, VerifiedFile
from ._idx import parse_idx
from ._locate import cache_dir, find_full_data
from ._sample import read_sample

__all__ = [
    "FASHION_MNIST_LABELS",
    "PIXEL_SCALE",
    "BatchIterator",
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "DataWarning",
    "DownloadError",
    "FashionMNIST",
    "FashionMNISTError",
    "SampleDataWarning",
    "VerifiedFile",
    "cache_dir",
    "get_fashion_mnist_labels",
    "load_data_fashion_mnist",
    "load_fashion_mnist",
]

FASHION_MNIST_LABELS = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
IMAGE_SIZE = 28

HOW_TO_GET_FULL_DATA = (
    "For the full dataset run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or `csoftmax data --download`, "
    "or pass data_dir= a directory holding the four files"
)


@dataclass(frozen=True, eq=False, repr=False)
class FashionMNIST:
    """The four arrays of Fashion-MNIST and where they came from.

    Images are uint8, C-contiguous, shape (N, 784) (rows of 28×28 pixels); labels are int64 in 0..9.
    `source` describes the directory (and mirror) or the embedded sample; `is_sample` is True for the
    sample; `files` records each verified file (path, sizes, SHA-256).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    is_sample: bool
    files: tuple[VerifiedFile, ...]

    def __repr__(self) -> str:
        kind = "sample" if self.is_sample else "full"
        return (
            f"FashionMNIST({kind}: {len(self.train_labels)} train, {len(self.test_labels)} test, "
            f"source={self.source!r})"
        )


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    sample: bool | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    progress: bool | None = None,
) -> FashionMNIST:
    """Fashion-MNIST as arrays, from the first place it is found (see the module docstring).

    data_dir: a directory holding the four files (.gz, .xz or plain), used alone: missing files are
        downloaded into it, or the call fails.
    sample: None — the full dataset, else the embedded sample with a SampleDataWarning; True — the sample
        (no warning); False — the full dataset or DataNotFoundError.
    download: whether missing files may be fetched from the mirrors.
    mirrors: base URLs to fetch from (default: $CSOFTMAX_MIRRORS, else the official mirrors).
    progress: draw a download progress bar on stderr (default: when stderr is a terminal).

    Raises DataNotFoundError (nothing found and the sample refused), DownloadError (data_dir given and no
    mirror delivered), ChecksumError or DataFormatError (a corrupt file outside the cache — it is never
    silently replaced by another copy).
    """
    if sample is True:
        if data_dir is not None:
            raise ValueError("data_dir and sample=True contradict each other: pass one of them")
        return _dataset(read_sample(), is_sample=True)
    try:
        found = find_full_data(data_dir, download=download, mirrors=mirrors, progress=progress)
    except DataNotFoundError as exc:
        if sample is False or data_dir is not None:
            raise
        dataset = _dataset(read_sample(), is_sample=True)
        warn(
            f"USING THE EMBEDDED FASHION-MNIST SAMPLE ({len(dataset.train_labels)} train / "
            f"{len(dataset.test_labels)} test images), not the full dataset: {exc}. {HOW_TO_GET_FULL_DATA}; "
            "pass sample=True to use the sample without this warning.",
            SampleDataWarning,
        )
        return dataset
    return _dataset(found, is_sample=False)


def load_data_fashion_mnist(
    batch_size: int,
    *,
    data_dir: str | os.PathLike | None = None,
    sample: bool | None = None,
    seed: int | None = None,
) -> tuple[BatchIterator, BatchIterator]:
    """The chapter's `(train_iter, test_iter)`: minibatch iterators over Fashion-MNIST.

    Each yields `(X, y)`: X float32 (n, 1, 28, 28) in [0, 1], y int64 (n,); the last batch is partial.
    train_iter reshuffles every epoch (reproducibly for a given `seed`); test_iter keeps the file order.
    Both expose `images` (uint8 (N, 784)), `labels` (int64 (N,)), `x_scale`, `batch_size`, `source` and
    `next_epoch_order()` for training on the raw data; see BatchIterator. `data_dir` and `sample` are as
    for load_fashion_mnist.
    """
    dataset = load_fashion_mnist(data_dir, sample=sample)
    common = {"source": dataset.source, "is_sample": dataset.is_sample}
    train_iter = BatchIterator(
        dataset.train_images, dataset.train_labels, batch_size, shuffle=True, seed=seed, **common
    )
    test_iter = BatchIterator(dataset.test_images, dataset.test_labels, batch_size, shuffle=False, **common)
    return train_iter, test_iter


def get_fashion_mnist_labels(labels: Iterable[int]) -> list[str]:
    """The text labels of numeric labels 0..9 (t-shirt, trouser, …, ankle boot), in order."""
    values = np.asarray(labels)
    if values.size == 0:
        return []
    if values.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integers, got dtype {values.dtype}")
    values = values.ravel()
    outside = (values < 0) | (values >= len(FASHION_MNIST_LABELS))
    if outside.any():
        raise ValueError(f"labels: {values[outside][0]} is not a Fashion-MNIST class (0 to 9)")
    return [FASHION_MNIST_LABELS[value] for value in values.tolist()]


def _dataset(found: FoundData, *, is_sample: bool) -> FashionMNIST:
    """Parse the four verified files and check they form an image dataset with labels 0..9."""
    paths = [file.path for file in found.files]
    arrays = [parse_idx(content, str(path)) for content, path in zip(found.contents, paths, strict=True)]
    train = _checked_split(arrays[0], arrays[1], paths[0], paths[1])
    test = _checked_split(arrays[2], arrays[3], paths[2], paths[3])
    return FashionMNIST(*train, *test, source=found.source, is_sample=is_sample, files=found.files)


def _checked_split(images, labels, images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 rows (N, 784) and labels as int64 (N,), once their shapes and values fit."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DataFormatError(
            f"{labels_path}: expected {images.shape[0]} uint8 labels (one per image of {images_path.name}), "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_LABELS):
        raise DataFormatError(f"{labels_path}: label {labels.max()} is not a class (0 to 9)")
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)
