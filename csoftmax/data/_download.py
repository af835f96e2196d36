"""Fetching a Fashion-MNIST file from the mirrors, so that only a complete, verified file ever appears.

A download is written to a hidden temporary file beside its destination, verified there (size and
SHA-256 of the decompressed content), and only then renamed into place: the rename is atomic, so a
reader (or another process downloading the same file) sees either no file or the whole verified one.
Whatever goes wrong, including an interrupt, the temporary file is removed.
"""

from __future__ import annotations

import http.client
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .._progress import ProgressBar
from ._errors import DownloadError
from ._files import DataFile, read_verified

# The official locations of the four .gz files: Zalando's own bucket, then the files in the
# fashion-mnist repository.
DEFAULT_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
)
MIRRORS_ENV = "CSOFTMAX_MIRRORS"
TIMEOUT_SECONDS = 30.0  # per connection attempt and per read, not for the whole file
CHUNK_BYTES = 1 << 16


def configured_mirrors() -> tuple[str, ...]:
    """Base URLs from $CSOFTMAX_MIRRORS (separated by spaces or commas; empty: never download), else the
    official ones."""
    value = os.environ.get(MIRRORS_ENV)
    if value is None:
        return DEFAULT_MIRRORS
    return tuple(value.replace(",", " ").split())


def download_verified(
    file: DataFile,
    directory: Path,
    mirrors: Sequence[str],
    *,
    progress: bool | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> tuple[Path, str]:
    """Fetch `file.name + ".gz"` from the first mirror that delivers it verified, into `directory`.

    Returns the file's path and the URL it came from. Raises DownloadError listing every mirror's failure
    (unreachable, HTTP error, interrupted, truncated, wrong checksum). `progress`: draw a progress bar on
    stderr (default: only when stderr is a terminal).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    destination = directory / (file.name + ".gz")
    show_progress = sys.stderr.isatty() if progress is None else progress
    failures = []
    for base in mirrors:
        url = f"{base.rstrip('/')}/{destination.name}"
        try:
            _fetch_verified(url, destination, file, show_progress, timeout)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {_describe(exc)}")
        else:
            return destination, url
    if not failures:
        raise DownloadError(f"cannot download {destination.name}: no mirror configured (${MIRRORS_ENV} is empty)")
    raise DownloadError(f"could not download {destination.name} from any mirror: " + "; ".join(failures))


def _fetch_verified(url: str, destination: Path, file: DataFile, show_progress: bool, timeout: float) -> None:
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    # A compressed file is never much larger than its content; more than this is the wrong file, and
    # stopping early keeps a misbehaving server from filling the disk.
    max_bytes = file.size + file.size // 100 + CHUNK_BYTES
    request = urllib.request.Request(url, headers={"User-Agent": "csoftmax"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(temporary, "xb") as out:
            announced = _content_length(response)
            bar = ProgressBar(sys.stderr) if show_progress else None
            received = 0
            try:
                while chunk := response.read(CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadError(f"response is larger than {max_bytes} bytes: not {destination.name}")
                    out.write(chunk)
                    if bar:
                        bar.update(destination.name, received, announced, _megabytes(received, announced))
            finally:
                if bar:
                    bar.finish()
            if announced is not None and received != announced:
                raise DownloadError(f"interrupted: received {received} of {announced} bytes")
            out.flush()
            os.fsync(out.fileno())
        read_verified(temporary, file)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _megabytes(done: int, total: int | None) -> str:
    return f"  {done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"  {done / 1e6:.1f} MB"


def _content_length(response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, TypeError, ValueError):
        return None


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong with a mirror."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP error {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"interrupted: connection closed with {exc.expected} bytes still to come"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__

