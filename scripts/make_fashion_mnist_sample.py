#!/usr/bin/env python3
"""Make the embedded Fashion-MNIST sample in csoftmax/data/ from the real, verified files.

The sample is stratified: the first 600 training and the first 100 test images of every class, kept in
file order (6,000 + 1,000 images). Fashion-MNIST's files are already shuffled, so the first images of a
class are as good a sample as any, and the rule needs no random generator whose stream could change
between NumPy versions: anyone can rebuild the same sample.

Each split is written as xz-compressed IDX files (readable with the standard library and NumPy, and by
the same code as the full files), with a manifest recording the rule, the counts, the SHA-256 of every
decompressed sample file (checked at load time) and of the real files it came from.

    python scripts/make_fashion_mnist_sample.py [--data-dir DIR] [--out DIR] [--xz-preset N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

import numpy as np

from csoftmax.data import _files
from csoftmax.data._idx import encode_idx
from csoftmax.data._sample import MANIFEST_NAME, SAMPLE_DIR
from csoftmax.data import FASHION_MNIST_LABELS, IMAGE_SIZE, load_fashion_mnist

TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` examples of each class, in file order."""
    chosen = []
    for label in range(len(FASHION_MNIST_LABELS)):
        indices = np.flatnonzero(labels == label)[:per_class]
        if len(indices) < per_class:
            raise ValueError(f"class {label} has only {len(indices)} examples, fewer than {per_class}")
        chosen.append(indices)
    return np.sort(np.concatenate(chosen))


def write_sample(data_dir: Path | None, out: Path, xz_preset: int) -> int:
    """Write the sample's four .xz files and its manifest into `out`; return their total size in bytes."""
    dataset = load_fashion_mnist(data_dir, sample=False, download=False)
    train = first_per_class(dataset.train_labels, TRAIN_PER_CLASS)
    test = first_per_class(dataset.test_labels, TEST_PER_CLASS)
    arrays = [
        dataset.train_images[train].reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        dataset.train_labels[train].astype(np.uint8),
        dataset.test_images[test].reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        dataset.test_labels[test].astype(np.uint8),
    ]
    out.mkdir(parents=True, exist_ok=True)
    entries, total_bytes = [], 0
    for file, array in zip(_files.FASHION_MNIST_FILES, arrays, strict=True):
        content = encode_idx(array)
        compressed = lzma.compress(content, preset=xz_preset | lzma.PRESET_EXTREME)
        (out / f"{file.name}.xz").write_bytes(compressed)
        entries.append({"name": file.name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
        total_bytes += len(compressed)
        print(f"{file.name}.xz: {array.shape[0]} examples, {len(content)} bytes → {len(compressed)} bytes xz")
    manifest = {
        "dataset": "Fashion-MNIST, embedded sample",
        "selection": (
            f"the first {TRAIN_PER_CLASS} training and the first {TEST_PER_CLASS} test examples of each class, "
            "in file order"
        ),
        "train_per_class": TRAIN_PER_CLASS,
        "test_per_class": TEST_PER_CLASS,
        "files": entries,
        "made_from": {file.name: file.sha256 for file in _files.FASHION_MNIST_FILES},
        "license": "MIT, Copyright (c) 2017 Zalando SE; see LICENSE-fashion-mnist.txt",
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"sample: {len(train)} train + {len(test)} test examples, {total_bytes} bytes compressed, in {out}")
    return total_bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, help="directory of the real files (default: where csoftmax finds them)"
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help=f"output directory (default: {SAMPLE_DIR})")
    parser.add_argument("--xz-preset", type=int, default=9, choices=range(10), help="xz compression level (default 9)")
    args = parser.parse_args(argv)
    write_sample(args.data_dir, args.out, args.xz_preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
