"""The downloader against a real HTTP server on 127.0.0.1: every scenario ends in a verified file or a
clear error naming the mirror, and never leaves a partial or wrong file behind."""

import gzip
import socket

import numpy as np
import pytest

from csoftmax.data._download import ProgressBar, configured_mirrors, download_verified
from csoftmax.data import DataWarning, DownloadError, load_fashion_mnist

NAME = "train-labels-idx1-ubyte"  # a small file of the fake set


@pytest.fixture
def unreachable_url():
    """A URL on 127.0.0.1 where nothing listens (the port was just free), so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def spec(fake, name=NAME):
    return next(file for file in fake.files if file.name == name)


def assert_nothing_left(directory):
    assert list(directory.iterdir()) == [], "a partial or unverified file was left behind"


def test_success_writes_the_verified_file(fake_fashion_mnist, mirror_server, tmp_path):
    base = mirror_server.serve("ok", fake_fashion_mnist.gzipped)
    path, url = download_verified(spec(fake_fashion_mnist), tmp_path, [base], progress=False)
    assert path == tmp_path / f"{NAME}.gz" and url == f"{base}/{NAME}.gz"
    assert gzip.decompress(path.read_bytes()) == fake_fashion_mnist.contents[NAME]
    assert [p.name for p in tmp_path.iterdir()] == [f"{NAME}.gz"]  # no temporary file left


def test_a_failing_mirror_then_a_working_one(fake_fashion_mnist, mirror_server, unreachable_url, tmp_path):
    missing = mirror_server.serve("missing", {})  # answers 404
    broken = mirror_server.serve("broken", fake_fashion_mnist.gzipped, behaviour=500)
    good = mirror_server.serve("good", fake_fashion_mnist.gzipped)
    path, url = download_verified(spec(fake_fashion_mnist), tmp_path, [unreachable_url, missing, broken, good])
    assert url.startswith(good)
    assert gzip.decompress(path.read_bytes()) == fake_fashion_mnist.contents[NAME]
    assert mirror_server.requests == [f"/missing/{NAME}.gz", f"/broken/{NAME}.gz", f"/good/{NAME}.gz"]


@pytest.mark.parametrize(
    "behaviour, reason",
    [
        ("truncated", "truncated gzip stream"),  # consistent headers, short file: caught by verification
        ("interrupted", "interrupted"),  # the connection drops mid-body
        (404, "HTTP error 404"),
        (503, "HTTP error 503"),
    ],
)
def test_a_bad_response_is_a_clear_error_and_leaves_nothing(
    fake_fashion_mnist, mirror_server, tmp_path, behaviour, reason
):
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped, behaviour=behaviour)
    with pytest.raises(DownloadError, match=reason) as info:
        download_verified(spec(fake_fashion_mnist), tmp_path, [base])
    assert f"{base}/{NAME}.gz" in str(info.value)
    assert_nothing_left(tmp_path)


def test_wrong_checksum_is_rejected(fake_fashion_mnist, mirror_server, tmp_path):
    # A well-formed IDX file of the right size, but not the expected content (another dataset, say).
    content = bytearray(fake_fashion_mnist.contents[NAME])
    content[-1] = (content[-1] + 1) % 10
    base = mirror_server.serve("m", {NAME: gzip.compress(bytes(content))})
    with pytest.raises(DownloadError, match=r"SHA-256 of the decompressed content is [0-9a-f]{64}, expected"):
        download_verified(spec(fake_fashion_mnist), tmp_path, [base])
    assert_nothing_left(tmp_path)


def test_an_oversized_response_is_cut_off(fake_fashion_mnist, mirror_server, tmp_path):
    base = mirror_server.serve("m", {NAME: b"\x00" * 200_000})
    with pytest.raises(DownloadError, match="response is larger than"):
        download_verified(spec(fake_fashion_mnist), tmp_path, [base])
    assert_nothing_left(tmp_path)


def test_every_mirror_failing_lists_each(fake_fashion_mnist, mirror_server, unreachable_url, tmp_path):
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped, behaviour="interrupted")
    with pytest.raises(DownloadError) as info:
        download_verified(spec(fake_fashion_mnist), tmp_path, [unreachable_url, base])
    message = str(info.value)
    assert f"{unreachable_url}/{NAME}.gz: unreachable" in message
    assert f"{base}/{NAME}.gz: interrupted" in message
    assert_nothing_left(tmp_path)


def test_no_mirror_configured_is_a_clear_error(fake_fashion_mnist, tmp_path):
    with pytest.raises(DownloadError, match="no mirror configured"):
        download_verified(spec(fake_fashion_mnist), tmp_path, [])


def test_mirrors_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CSOFTMAX_MIRRORS", "http://a/x, http://b/y")
    assert configured_mirrors() == ("http://a/x", "http://b/y")
    monkeypatch.setenv("CSOFTMAX_MIRRORS", "")
    assert configured_mirrors() == ()
    monkeypatch.delenv("CSOFTMAX_MIRRORS")
    assert all(url.startswith("http") for url in configured_mirrors()) and len(configured_mirrors()) >= 2


def test_load_downloads_the_missing_files_into_the_cache(fake_fashion_mnist, mirror_server, data_places):
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped)
    cache = fake_fashion_mnist.write(data_places["cache"], names=["t10k-images-idx3-ubyte"])

    dataset = load_fashion_mnist(mirrors=[base], progress=False)
    assert dataset.source == f"{cache} (cache), downloaded from {base}"
    assert len(mirror_server.requests) == 3  # the file already in the cache is not fetched again
    np.testing.assert_array_equal(dataset.test_images, fake_fashion_mnist.arrays[2].reshape(20, 784))
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{f.name}.gz" for f in fake_fashion_mnist.files)

    again = load_fashion_mnist(mirrors=[base])
    assert again.source == f"{cache} (cache)" and len(mirror_server.requests) == 3


def test_a_corrupt_cached_file_is_removed_and_fetched_again(fake_fashion_mnist, mirror_server, data_places):
    cache = fake_fashion_mnist.write(data_places["cache"])
    (cache / f"{NAME}.gz").write_bytes(gzip.compress(b"not the labels"))
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped)

    with pytest.warns(DataWarning, match=f"removed a corrupt file from the cache: {cache / NAME}.gz"):
        dataset = load_fashion_mnist(mirrors=[base])
    assert mirror_server.requests == [f"/m/{NAME}.gz"]
    np.testing.assert_array_equal(dataset.train_labels, fake_fashion_mnist.arrays[1])


def test_data_dir_is_filled_from_the_mirrors_or_the_call_fails(fake_fashion_mnist, mirror_server, tmp_path):
    bad = mirror_server.serve("bad", fake_fashion_mnist.gzipped, behaviour="truncated")
    with pytest.raises(DownloadError, match="truncated"):
        load_fashion_mnist(tmp_path / "mine", mirrors=[bad])
    assert_nothing_left(tmp_path / "mine")

    good = mirror_server.serve("good", fake_fashion_mnist.gzipped)
    dataset = load_fashion_mnist(tmp_path / "mine", mirrors=[bad, good])
    assert dataset.source == f"{tmp_path / 'mine'}, downloaded from {good}" and not dataset.is_sample


def test_progress_is_quiet_when_stderr_is_not_a_terminal(fake_fashion_mnist, mirror_server, tmp_path, capsys):
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped)
    download_verified(spec(fake_fashion_mnist), tmp_path / "quiet", [base])  # progress=None: capsys is no tty
    assert capsys.readouterr().err == ""
    download_verified(spec(fake_fashion_mnist), tmp_path / "loud", [base], progress=True)
    size = len(fake_fashion_mnist.gzipped[NAME]) / 1e6
    assert capsys.readouterr().err.endswith(f"\r{NAME}.gz 100% [{'#' * 24}]  {size:.1f}/{size:.1f} MB\n")


def test_an_interrupt_mid_download_leaves_nothing(fake_fashion_mnist, mirror_server, monkeypatch, tmp_path):
    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "update", interrupt)
    base = mirror_server.serve("m", fake_fashion_mnist.gzipped)
    with pytest.raises(KeyboardInterrupt):
        download_verified(spec(fake_fashion_mnist), tmp_path, [base], progress=True)
    assert_nothing_left(tmp_path)
