"""The downloader against a real HTTP server on 127.0.0.1: every scenario ends in a verified file or a
clear error naming the mirror, and never leaves a partial or wrong file behind."""

import gzip
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from csoftmax.data._download import (
    DEADLINE_ENV,
    DEFAULT_DEADLINE_SECONDS,
    STALE_GRACE_SECONDS,
    ProgressBar,
    configured_mirrors,
    download_deadline,
    download_verified,
)
from csoftmax.data import DataNotFoundError, DataWarning, DownloadError, load_fashion_mnist

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


# --- an overall deadline -------------------------------------------------------------------------------


class TrickleServer:
    """An HTTP server on 127.0.0.1 announcing `total` bytes, then sending 2 KB every 0.5 s: never idle
    long enough for a per-read timeout, so only an overall deadline stops it."""

    def __init__(self, total=60_000):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(total))
                self.end_headers()
                try:
                    for _ in range(total // 2048):
                        self.wfile.write(b"\x00" * 2048)
                        self.wfile.flush()
                        time.sleep(0.5)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickle_server():
    server = TrickleServer()
    yield server
    server.close()


def test_a_trickling_mirror_fails_within_the_deadline(fake_fashion_mnist, trickle_server, tmp_path):
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than the 1.5 s deadline \(received [\d,]+ of "
                                            r"60,000 bytes; set \$CSOFTMAX_DOWNLOAD_DEADLINE"):
        download_verified(spec(fake_fashion_mnist), tmp_path, [trickle_server.url], deadline=1.5)
    # The deadline, plus a trickle step and slack for a loaded machine; the whole body would take 15 s.
    assert time.monotonic() - start < 1.5 + 3.0
    assert_nothing_left(tmp_path)


def test_the_deadline_has_a_default_and_an_environment_setting(monkeypatch):
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    assert download_deadline() == DEFAULT_DEADLINE_SECONDS and 60 <= DEFAULT_DEADLINE_SECONDS <= 3600
    monkeypatch.setenv(DEADLINE_ENV, "2.5")
    assert download_deadline() == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(DEADLINE_ENV, bad)
        with pytest.raises(ValueError, match=f"\\${DEADLINE_ENV}: expected a positive"):
            download_deadline()


def test_load_uses_the_deadline_from_the_environment(fake_fashion_mnist, trickle_server, data_places, monkeypatch):
    monkeypatch.setenv(DEADLINE_ENV, "1")
    start = time.monotonic()
    with pytest.raises(DataNotFoundError, match="took longer than the 1 s deadline"):
        load_fashion_mnist(mirrors=[trickle_server.url], sample=False)
    assert time.monotonic() - start < 1 + 3.0


# --- partial files of killed downloads --------------------------------------------------------------------

DOWNLOAD_IN_A_CHILD = """
import sys
from pathlib import Path
from csoftmax.data._files import DataFile
from csoftmax.data._download import download_verified
download_verified(DataFile(sys.argv[1], int(sys.argv[2]), sys.argv[3]), Path(sys.argv[4]), [sys.argv[5]],
                  progress=False, deadline=600)
"""


def start_download_in_a_child(file, directory, url):
    """A separate process downloading `file` from the (trickling) mirror; returns it once its .part exists."""
    before = set(directory.glob("*.part"))
    child = subprocess.Popen([sys.executable, "-c", DOWNLOAD_IN_A_CHILD, file.name, str(file.size), file.sha256,
                              str(directory), url], cwd=directory.parent)
    for _ in range(600):  # up to 30 s for the child to start on a busy machine
        if set(directory.glob("*.part")) - before or child.poll() is not None:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the child download ended early"
    return child


def test_a_killed_downloads_part_file_is_removed_by_the_next_download(fake_fashion_mnist, trickle_server,
                                                                      mirror_server, tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    killed = start_download_in_a_child(spec(fake_fashion_mnist), directory, trickle_server.url)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    [stale] = directory.glob("*.part")  # nothing could clean up after SIGKILL
    old = time.time() - 2 * STALE_GRACE_SECONDS
    os.utime(stale, (old, old))

    alive = start_download_in_a_child(spec(fake_fashion_mnist, "t10k-labels-idx1-ubyte"), directory,
                                      trickle_server.url)
    try:
        [busy] = [p for p in directory.glob("*.part") if p != stale]
        os.utime(busy, (old, old))  # old, but its download is alive: it must stay
        base = mirror_server.serve("m", fake_fashion_mnist.gzipped)
        download_verified(spec(fake_fashion_mnist), directory, [base], progress=False)
        assert not stale.exists() and busy.exists()
        assert sorted(p.name for p in directory.iterdir()) == sorted([f"{NAME}.gz", busy.name])
    finally:
        alive.kill()
        alive.wait()


def test_a_fresh_unlocked_part_file_is_left_alone(fake_fashion_mnist, mirror_server, tmp_path):
    """Between creating its .part file and locking it, a download is not yet locked: a grace period
    keeps another process from removing it in that moment."""
    fresh = tmp_path / f".{NAME}.gz.12345-0123abcd.part"
    fresh.write_bytes(b"partial")
    other = tmp_path / ".unrelated.part"
    other.write_bytes(b"not ours")
    old = time.time() - 2 * STALE_GRACE_SECONDS
    os.utime(other, (old, old))
    download_verified(spec(fake_fashion_mnist), tmp_path, [mirror_server.serve("m", fake_fashion_mnist.gzipped)])
    assert fresh.exists() and other.exists()
    os.utime(fresh, (old, old))
    download_verified(spec(fake_fashion_mnist), tmp_path, [mirror_server.serve("m", fake_fashion_mnist.gzipped)])
    assert not fresh.exists() and other.exists()
