"""Fetching a Fashion-MNIST file from the mirrors, so that only a complete, verified file ever appears.

A download is written to a hidden temporary file beside its destination, verified there (size and
SHA-256 of the decompressed content), and only then renamed into place: the rename is atomic, so a
reader (or another process downloading the same file) sees either no file or the whole verified one.
Whatever goes wrong, including an interrupt, the temporary file is removed.

Two things bound a download. A deadline per file and mirror (DEFAULT_DEADLINE_SECONDS, or
$CSOFTMAX_DOWNLOAD_DEADLINE): a mirror trickling a few bytes at a time never trips the per-read timeout,
so without it a download could last for hours. And a process killed outright (SIGKILL, power loss)
cannot remove its temporary file, so each download first removes the stale ones of others. A live
download holds an advisory lock (flock) on its temporary file; the kernel drops it however the process
ends, so "unlocked" means "abandoned" -- unlike a PID in the file name, which can be reused, or belong to
another PID namespace (a container sharing the cache). Where flock is missing (Windows), a temporary
file unmodified for a day counts as abandoned: a live download writes it at least once per read timeout.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .._progress import ProgressBar
from .._validation import positive_float
from ._errors import DownloadError
from ._files import DataFile, read_verified

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# The official locations of the four .gz files: Zalando's own bucket, then the files in the
# fashion-mnist repository.
DEFAULT_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
)
MIRRORS_ENV = "CSOFTMAX_MIRRORS"
TIMEOUT_SECONDS = 30.0  # per connection attempt and per read, not for the whole file
# For the whole of one file from one mirror: the 26 MB of training images at 30 KB/s. A mirror slower
# than that is better given up for the next one (or for the Debian package).
DEFAULT_DEADLINE_SECONDS = 900.0
DEADLINE_ENV = "CSOFTMAX_DOWNLOAD_DEADLINE"
CHUNK_BYTES = 1 << 16
# A temporary file: .<destination name>.<pid>-<8 hex digits>.part, beside its destination.
_PART_NAME = re.compile(r"\..+\.\d+-[0-9a-f]{8}\.part")
# Between creating its temporary file and locking it, a download holds no lock: a file this young is
# never taken for abandoned.
STALE_GRACE_SECONDS = 60.0
STALE_UNLOCKABLE_SECONDS = 86400.0  # without flock: unmodified for a day


def download_deadline() -> float:
    """Seconds a file may take from one mirror: $CSOFTMAX_DOWNLOAD_DEADLINE, else DEFAULT_DEADLINE_SECONDS."""
    value = os.environ.get(DEADLINE_ENV)
    if not value:
        return DEFAULT_DEADLINE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"${DEADLINE_ENV}: expected a positive number of seconds, got {value!r}") from None
    return positive_float(seconds, f"${DEADLINE_ENV}")


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
    deadline: float | None = None,
) -> tuple[Path, str]:
    """Fetch `file.name + ".gz"` from the first mirror that delivers it verified, into `directory`.

    Returns the file's path and the URL it came from. Raises DownloadError listing every mirror's failure
    (unreachable, HTTP error, interrupted, truncated, wrong checksum, past the deadline). `progress`: draw
    a progress bar on stderr (default: only when stderr is a terminal). `timeout`: seconds per connection
    attempt and per read; `deadline`: seconds for the whole file from one mirror (default:
    download_deadline()). Abandoned temporary files of earlier downloads into `directory` are removed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    remove_abandoned_parts(directory)
    destination = directory / (file.name + ".gz")
    show_progress = sys.stderr.isatty() if progress is None else progress
    deadline = download_deadline() if deadline is None else positive_float(deadline, "deadline")
    failures = []
    for base in mirrors:
        url = f"{base.rstrip('/')}/{destination.name}"
        try:
            _fetch_verified(url, destination, file, show_progress, timeout, deadline)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {_describe(exc)}")
        else:
            return destination, url
    if not failures:
        raise DownloadError(f"cannot download {destination.name}: no mirror configured (${MIRRORS_ENV} is empty)")
    raise DownloadError(f"could not download {destination.name} from any mirror: " + "; ".join(failures))


def _fetch_verified(url: str, destination: Path, file: DataFile, show_progress: bool, timeout: float,
                    deadline: float) -> None:
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    # A compressed file is never much larger than its content; more than this is the wrong file, and
    # stopping early keeps a misbehaving server from filling the disk.
    max_bytes = file.size + file.size // 100 + CHUNK_BYTES
    request = urllib.request.Request(url, headers={"User-Agent": "csoftmax"})
    give_up_at = time.monotonic() + deadline
    try:
        # No single wait (connecting, or one read) may outlast the deadline either.
        with urllib.request.urlopen(request, timeout=min(timeout, deadline)) as response, \
                open(temporary, "xb") as out:
            _lock(out)
            announced = _content_length(response)
            bar = ProgressBar(sys.stderr) if show_progress else None
            received = 0
            try:
                # read1: whatever has arrived, so that the deadline is checked between small pieces
                while chunk := response.read1(CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadError(f"response is larger than {max_bytes} bytes: not {destination.name}")
                    out.write(chunk)
                    if bar:
                        bar.update(destination.name, received, announced, _megabytes(received, announced))
                    if time.monotonic() > give_up_at:
                        of = f"{announced:,}" if announced is not None else "an unknown number of"
                        raise DownloadError(f"took longer than the {deadline:g} s deadline (received {received:,} "
                                            f"of {of} bytes; set ${DEADLINE_ENV} to allow more)")
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


def _lock(file) -> bool:
    """Take the file's advisory lock without waiting; False if another process holds it (or no flock)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_abandoned_parts(directory: Path) -> None:
    """Remove the temporary files of downloads into `directory` that are no longer running (see the
    module docstring); files of live downloads, and anything not named like a temporary file, stay."""
    now = time.time()
    for part in Path(directory).glob(".*.part"):
        if not _PART_NAME.fullmatch(part.name):
            continue
        try:
            age = now - part.stat().st_mtime
            if age < STALE_GRACE_SECONDS:
                continue
            with open(part, "rb") as handle:
                abandoned = _lock(handle) if fcntl is not None else age > STALE_UNLOCKABLE_SECONDS
                if abandoned:
                    part.unlink(missing_ok=True)  # under the lock: no download can take it meanwhile
        except OSError:  # removed meanwhile, or not ours to remove: leave it
            continue


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
