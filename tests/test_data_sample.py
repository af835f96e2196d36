"""The embedded sample: stratified, small, verified, licensed."""

import json

import numpy as np

from csoftmax.data._sample import LICENSE_NAME, MANIFEST_NAME, SAMPLE_DIR
from csoftmax.data import load_fashion_mnist

MAX_SAMPLE_BYTES = 3_000_000


def test_the_sample_is_stratified():
    sample = load_fashion_mnist(sample=True)
    assert sample.is_sample and sample.source == f"embedded sample ({SAMPLE_DIR})"
    assert sample.train_images.shape == (6000, 784) and sample.test_images.shape == (1000, 784)
    assert sample.train_images.dtype == np.uint8 and sample.train_labels.dtype == np.int64
    assert np.bincount(sample.train_labels).tolist() == [600] * 10
    assert np.bincount(sample.test_labels).tolist() == [100] * 10
    assert len(np.unique(sample.train_images, axis=0)) == 6000  # real, distinct images
    assert 60 < sample.train_images.mean() < 90  # Fashion-MNIST's mean pixel is about 72.9


def test_the_sample_is_small_on_disk():
    sizes = {path.name: path.stat().st_size for path in SAMPLE_DIR.iterdir()}
    assert sorted(sizes) == sorted(
        [LICENSE_NAME, MANIFEST_NAME]
        + [
            f"{n}-idx{d}-ubyte.xz"
            for n, d in [("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1)]
        ]
    )
    assert sum(sizes.values()) <= MAX_SAMPLE_BYTES


def test_the_manifest_records_the_rule_and_the_source():
    manifest = json.loads((SAMPLE_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert (manifest["train_per_class"], manifest["test_per_class"]) == (600, 100)
    assert manifest["made_from"]["train-images-idx3-ubyte"].startswith("c59f468a")
    assert [entry["size"] for entry in manifest["files"]] == [6000 * 784 + 16, 6008, 1000 * 784 + 16, 1008]


def test_the_licence_notice_ships_with_the_sample():
    notice = (SAMPLE_DIR / LICENSE_NAME).read_text(encoding="utf-8")
    assert "Copyright © 2017 Zalando SE" in notice and "The MIT License" in notice
    assert "Permission is hereby granted, free of charge" in notice
