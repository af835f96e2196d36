"""The real Fashion-MNIST (CI installs the Debian package dataset-fashion-mnist). Without it these tests
fail — they never skip."""

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from csoftmax.data._sample import MANIFEST_NAME, SAMPLE_DIR
from csoftmax.cli import main
from csoftmax.data import load_data_fashion_mnist, load_fashion_mnist

pytestmark = pytest.mark.full_data

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_fashion_mnist_sample.py"

# SHA-256 of the parsed arrays (images as uint8 rows, labels as uint8) and their sums: they check the
# parsing, independently of the file checksums that the loader verifies.
PARSED = {
    "train_images": ("2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012", 3431114169),
    "train_labels": ("657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7", 270000),
    "test_images": ("c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a", 573469082),
    "test_labels": ("3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9", 45000),
}


@pytest.fixture(scope="module")
def fashion_mnist():
    return load_fashion_mnist(sample=False, download=False)


def test_the_full_dataset_is_found_without_a_download(fashion_mnist):
    assert not fashion_mnist.is_sample
    assert "sample" not in fashion_mnist.source
    assert [file.content_bytes for file in fashion_mnist.files] == [47040016, 60008, 7840016, 10008]


def test_sizes_and_classes(fashion_mnist):
    assert fashion_mnist.train_images.shape == (60000, 784) and fashion_mnist.test_images.shape == (10000, 784)
    assert fashion_mnist.train_images.dtype == np.uint8 and fashion_mnist.train_images.flags.c_contiguous
    assert fashion_mnist.train_labels.dtype == np.int64 and fashion_mnist.test_labels.dtype == np.int64
    assert np.bincount(fashion_mnist.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion_mnist.test_labels).tolist() == [1000] * 10
    assert fashion_mnist.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the published first labels


@pytest.mark.parametrize("name", list(PARSED))
def test_pixel_and_label_checksums(fashion_mnist, name):
    array = getattr(fashion_mnist, name)
    assert hashlib.sha256(array.astype(np.uint8).tobytes()).hexdigest() == PARSED[name][0]
    assert int(array.sum(dtype=np.int64)) == PARSED[name][1]


def test_iterators_over_the_real_data(fashion_mnist):
    train_iter, test_iter = load_data_fashion_mnist(256, seed=0)
    assert train_iter.source == fashion_mnist.source and not train_iter.is_sample
    assert (len(train_iter), len(test_iter)) == (235, 40)  # 60000 = 234·256 + 96, 10000 = 39·256 + 16
    epochs = []
    for _ in range(2):
        sizes, seen = [], []
        for X, y in train_iter:
            assert X.dtype == np.float32 and X.shape == (len(y), 1, 28, 28)
            assert y.dtype == np.int64
            assert X.min() >= 0.0 and X.max() <= 1.0
            sizes.append(len(y))
            seen.append(y)
        assert sizes == [256] * 234 + [96]
        epochs.append(np.concatenate(seen))
        assert np.bincount(epochs[-1]).tolist() == [6000] * 10
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled

    X_test = np.concatenate([X for X, _ in test_iter])
    y_test = np.concatenate([y for _, y in test_iter])
    np.testing.assert_array_equal(y_test, fashion_mnist.test_labels)  # file order, no shuffle
    np.testing.assert_array_equal(X_test.reshape(10000, 784), fashion_mnist.test_images * np.float32(1 / 255))


def test_an_epoch_order_visits_every_example_once(fashion_mnist):
    train_iter, _ = load_data_fashion_mnist(256, seed=1)
    first, second = train_iter.next_epoch_order(), train_iter.next_epoch_order()
    for order in (first, second):
        assert order.dtype == np.int64 and np.array_equal(np.sort(order), np.arange(60000))
    assert not np.array_equal(first, second)


def test_the_sample_is_what_the_script_makes_from_the_real_files(tmp_path):
    """The committed sample is reproducible: the script, run on the real files, makes the same content."""
    spec = importlib.util.spec_from_file_location("make_fashion_mnist_sample", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path), "--xz-preset", "0"]) == 0
    made = json.loads((tmp_path / MANIFEST_NAME).read_text())
    shipped = json.loads((SAMPLE_DIR / MANIFEST_NAME).read_text())
    assert made == shipped


def test_csoftmax_data_reports_the_full_dataset(fashion_mnist, capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Fashion-MNIST, full dataset\n  source: {fashion_mnist.source}\n")
    assert "47,040,016 decompressed  SHA-256 verified" in out
    assert "train: 60,000 images, 6,000 per class" in out and "test:  10,000 images, 1,000 per class" in out
