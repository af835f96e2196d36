"""Where the data is looked for, in which order, and what happens when it is missing or corrupt."""

import gzip
import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import csoftmax.data._files
from csoftmax.data._files import FASHION_MNIST_FILES, DataFile
from csoftmax.data._idx import encode_idx
from csoftmax.data._locate import cache_dir
from csoftmax.data._sample import SAMPLE_DIR, read_sample
from csoftmax.data import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    DownloadError,
    SampleDataWarning,
    load_fashion_mnist,
)

# The table in DESIGN.md: the SHA-256 of each decompressed file and its size.
PUBLISHED = {
    "train-images-idx3-ubyte": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


def test_the_checksum_table_is_the_published_one():
    assert {file.name: (file.size, file.sha256) for file in FASHION_MNIST_FILES} == PUBLISHED
    assert [file.name for file in FASHION_MNIST_FILES] == list(PUBLISHED)  # train images, labels, test ...


def test_data_dir_accepts_gzip_and_plain_files(fake_fashion_mnist, tmp_path):
    names = list(fake_fashion_mnist.contents)
    fake_fashion_mnist.write(tmp_path, compress=True, names=names[:2])
    fake_fashion_mnist.write(tmp_path, compress=False, names=names[2:])
    dataset = load_fashion_mnist(tmp_path, download=False)
    assert dataset.source == str(tmp_path) and not dataset.is_sample
    train_images, train_labels, test_images, test_labels = fake_fashion_mnist.arrays
    np.testing.assert_array_equal(dataset.train_images, train_images.reshape(30, 784))
    np.testing.assert_array_equal(dataset.test_images, test_images.reshape(20, 784))
    np.testing.assert_array_equal(dataset.train_labels, train_labels)
    np.testing.assert_array_equal(dataset.test_labels, test_labels)
    assert dataset.train_labels.dtype == np.int64 and dataset.train_images.flags.c_contiguous
    assert [file.path.name for file in dataset.files] == [f"{n}.gz" for n in names[:2]] + names[2:]
    assert all(file.sha256 == spec.sha256 for file, spec in zip(dataset.files, fake_fashion_mnist.files, strict=True))


def test_data_dir_is_used_alone(fake_fashion_mnist, data_places, tmp_path):
    fake_fashion_mnist.write(data_places["cache"])  # a complete copy elsewhere must not be used
    fake_fashion_mnist.write(tmp_path / "mine", names=["train-images-idx3-ubyte"])
    with pytest.raises(DataNotFoundError, match="mine: missing train-labels-idx1-ubyte, t10k-images"):
        load_fashion_mnist(tmp_path / "mine", download=False)
    with pytest.raises(DownloadError, match="no mirror configured"):  # $CSOFTMAX_MIRRORS is empty in tests
        load_fashion_mnist(tmp_path / "mine")


def test_a_corrupt_file_in_data_dir_raises_and_is_kept(fake_fashion_mnist, data_places, tmp_path):
    fake_fashion_mnist.write(data_places["cache"])
    directory = fake_fashion_mnist.write(tmp_path / "mine", compress=False)
    bad = directory / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x00")  # the last label was 9
    with pytest.raises(ChecksumError, match=f"{bad}: SHA-256 of the decompressed content"):
        load_fashion_mnist(directory)
    assert bad.exists()  # the user's file: reported, never deleted


def test_search_order_env_then_cache_then_system(fake_fashion_mnist, data_places, monkeypatch):
    for place in data_places.values():
        fake_fashion_mnist.write(place)
    monkeypatch.setenv("CSOFTMAX_DATA", str(data_places["env"]))
    assert load_fashion_mnist().source == f"{data_places['env']} ($CSOFTMAX_DATA)"
    monkeypatch.delenv("CSOFTMAX_DATA")
    assert load_fashion_mnist().source == f"{data_places['cache']} (cache)"
    shutil.rmtree(data_places["cache"])
    assert load_fashion_mnist().source == f"{data_places['system']} (Debian package dataset-fashion-mnist)"


def test_an_incomplete_location_is_skipped(fake_fashion_mnist, data_places, monkeypatch):
    fake_fashion_mnist.write(data_places["env"], names=["train-images-idx3-ubyte"])
    fake_fashion_mnist.write(data_places["system"])
    monkeypatch.setenv("CSOFTMAX_DATA", str(data_places["env"]))
    assert load_fashion_mnist().source.startswith(str(data_places["system"]))


@pytest.mark.parametrize("place", ["env", "system"])
def test_a_corrupt_file_outside_the_cache_raises(fake_fashion_mnist, data_places, monkeypatch, place):
    fake_fashion_mnist.write(data_places[place])
    monkeypatch.setenv("CSOFTMAX_DATA", str(data_places["env"]))
    bad = data_places[place] / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=f"{bad}: truncated gzip stream"):
        load_fashion_mnist()  # not the sample: a corrupt copy must not go unnoticed
    assert bad.exists()


def test_no_data_anywhere_falls_back_to_the_sample_loudly(fake_fashion_mnist, data_places):
    with pytest.warns(SampleDataWarning) as record:
        dataset = load_fashion_mnist()
    assert len(record) == 1
    message = str(record[0].message)
    assert "USING THE EMBEDDED FASHION-MNIST SAMPLE (6000 train / 1000 test images)" in message
    assert f"{data_places['cache']} (cache): missing all four files" in message  # why: where it looked
    assert "apt-get install dataset-fashion-mnist" in message and "csoftmax data --download" in message  # how to fix
    assert record[0].filename == __file__  # points at the caller's line, not inside csoftmax
    assert dataset.is_sample and dataset.source == f"embedded sample ({SAMPLE_DIR})"
    assert (len(dataset.train_labels), len(dataset.test_labels)) == (6000, 1000)


def test_sample_false_refuses_the_sample(fake_fashion_mnist, data_places):
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(sample=False)
    message = str(info.value)
    for place in ("cache", "system"):
        assert f"{data_places[place]}" in message
    assert "no download mirror configured" in message
    with pytest.raises(DataNotFoundError, match="downloading is off"):
        load_fashion_mnist(sample=False, download=False)


def test_data_dir_never_falls_back_to_the_sample(tmp_path):
    with pytest.raises(DataNotFoundError, match="missing all four files"):
        load_fashion_mnist(tmp_path / "empty", download=False)


def test_sample_true_gives_the_sample_without_a_warning(fake_fashion_mnist, data_places):
    fake_fashion_mnist.write(data_places["cache"])  # even with full data around
    dataset = load_fashion_mnist(sample=True)  # filterwarnings = error: any warning would fail this
    assert dataset.is_sample
    with pytest.raises(ValueError, match="data_dir and sample=True contradict"):
        load_fashion_mnist(data_places["cache"], sample=True)


def test_cache_dir_follows_the_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("CSOFTMAX_CACHE_DIR", str(tmp_path / "override"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "override"
    monkeypatch.delenv("CSOFTMAX_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "csoftmax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "csoftmax"


def _install_files(monkeypatch, directory, arrays):
    """Write `arrays` as the four files (plain) and make them the expected ones."""
    files = []
    for real, array in zip(FASHION_MNIST_FILES, arrays, strict=True):
        content = encode_idx(array)
        (directory / real.name).write_bytes(content)
        files.append(DataFile(real.name, len(content), hashlib.sha256(content).hexdigest()))
    monkeypatch.setattr(csoftmax.data._files, "FASHION_MNIST_FILES", tuple(files))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ([np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8)] * 2, "label 10 is not a class"),
        ([np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8)] * 2, "expected 3 uint8 labels"),
        ([np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8)] * 2, r"expected uint8 images of shape \(N, 28, 28\)"),
        ([np.zeros((3, 784), np.float32), np.zeros(3, np.uint8)] * 2, "expected uint8 images"),
    ],
)
def test_verified_files_that_are_not_an_image_dataset_are_rejected(monkeypatch, tmp_path, arrays, message):
    _install_files(monkeypatch, tmp_path, arrays)
    with pytest.raises(DataFormatError, match=message):
        load_fashion_mnist(tmp_path)


def test_a_damaged_sample_is_detected(tmp_path):
    directory = Path(shutil.copytree(SAMPLE_DIR, tmp_path / "sample"))
    assert read_sample(directory).files  # the copy reads fine
    labels = directory / "train-labels-idx1-ubyte.xz"
    labels.write_bytes(gzip.compress(b"\x00" * 6008))
    with pytest.raises(ChecksumError, match=f"{labels}: SHA-256"):
        read_sample(directory)
    (directory / "fashion-mnist-sample.json").unlink()
    with pytest.raises(DataNotFoundError, match="the embedded Fashion-MNIST sample is missing"):
        read_sample(directory)


def _make_special(path, kind):
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)  # never opened: reading it would block
    else:
        path.symlink_to(path.parent / "nowhere")


@pytest.mark.parametrize("kind, description", [("directory", "a directory"), ("FIFO", "a FIFO (named pipe)"),
                                               ("link", "a broken symbolic link")])
def test_something_else_where_a_data_file_should_be_is_named(fake_fashion_mnist, data_places, tmp_path, kind,
                                                             description):
    """Used to be skipped as missing, so data_dir= ended in "no mirror configured"."""
    names = list(fake_fashion_mnist.contents)
    directory = fake_fashion_mnist.write(tmp_path / "mine", names=names[:1] + names[2:])
    odd = directory / f"{names[1]}.gz"
    _make_special(odd, kind)
    for download in (True, False):
        with pytest.raises(DataFormatError, match=f"^{odd}: {re.escape(description)} where the data file "
                                                  f"{names[1]} should be$"):
            load_fashion_mnist(directory, download=download)
    # The same in a searched location, which is not silently skipped either.
    fake_fashion_mnist.write(data_places["system"], names=names[:1] + names[2:])
    _make_special(data_places["system"] / f"{names[1]}.gz", kind)
    with pytest.raises(DataFormatError, match=re.escape(description)):
        load_fashion_mnist(sample=False, download=False)
