"""The four Fashion-MNIST files: what they must contain, where in a directory they may be, and reading
one with its content verified.

Re-packagers re-compress the files (Debian's .gz differ from the official ones), so what is verified is
the SHA-256 of the *decompressed* content, whatever the compression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ._errors import ChecksumError, DataFormatError, DataNotFoundError, DataWarning, warn
from ._idx import read_decompressed


@dataclass(frozen=True)
class DataFile:
    """One IDX file by its decompressed name, size in bytes and SHA-256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FoundData:
    """The verified, decompressed contents of a dataset's files (in their table's order), and where
    they came from."""

    contents: tuple[bytes, ...]
    files: tuple[VerifiedFile, ...]
    source: str


@dataclass(frozen=True)
class VerifiedFile:
    """A file on disk whose decompressed content matched its DataFile."""

    path: Path
    stored_bytes: int  # on disk, possibly compressed
    content_bytes: int  # decompressed
    sha256: str


# Order: train images, train labels, test images, test labels (everything below relies on it).
# Tests replace this table with one for small generated files; the code reads it at call time.
FASHION_MNIST_FILES = (
    DataFile("train-images-idx3-ubyte", 47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    DataFile("train-labels-idx1-ubyte", 60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    DataFile("t10k-images-idx3-ubyte", 7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    DataFile("t10k-labels-idx1-ubyte", 10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
)

# A file may be stored gzip-compressed (as published), xz-compressed (the embedded sample) or plain.
STORED_SUFFIXES = (".gz", ".xz", "")


def find_file(directory: Path, file: DataFile) -> Path | None:
    """The first of name.gz, name.xz, name that exists in `directory`, or None.

    Something else under one of those names (a directory, a FIFO, a broken link) raises DataFormatError
    saying so: skipping it as missing would end in a misleading "missing" or download error, and
    opening a FIFO would block.
    """
    for suffix in STORED_SUFFIXES:
        path = Path(directory) / (file.name + suffix)
        if path.is_file():
            return path
        if path.is_symlink() or path.exists():
            raise DataFormatError(f"{path}: {_kind_of(path)} where the data file {file.name} should be")
    return None


def _kind_of(path: Path) -> str:
    """What stands at `path`, which is not a regular file, in a few words."""
    if not path.exists():
        return "a broken symbolic link"
    kinds = ((Path.is_dir, "a directory"), (Path.is_fifo, "a FIFO (named pipe)"), (Path.is_socket, "a socket"),
             (Path.is_block_device, "a device"), (Path.is_char_device, "a device"))
    return next((kind for is_kind, kind in kinds if is_kind(path)), "not a regular file")


def read_verified(path: Path, file: DataFile) -> tuple[bytes, VerifiedFile]:
    """The decompressed content of `path` and its record, once its size and SHA-256 match `file`.

    Raises ChecksumError (wrong size or digest) or DataFormatError (corrupt compression), naming `path`.
    """
    path = Path(path)
    content = read_decompressed(path, max_bytes=file.size)
    if len(content) != file.size:
        raise ChecksumError(
            f"{path}: truncated: {len(content)} bytes decompressed, expected {file.size} for {file.name}"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != file.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed content is {digest}, expected {file.sha256} for {file.name} "
            "(a corrupt file, or not the file it is named after)"
        )
    return content, VerifiedFile(path, path.stat().st_size, len(content), digest)


def read_all(
    directory: Path, files: tuple[DataFile, ...], *, remove_invalid: bool = False
) -> tuple[tuple[bytes, ...], tuple[VerifiedFile, ...]]:
    """Read and verify `files` from `directory`; the first missing or failing file raises.

    remove_invalid (for the cache, which this package owns): delete every file that fails verification,
    with a warning, then raise DataNotFoundError so the caller fetches it again — a failing file is never
    used and never left behind.
    """
    contents, verified, removed = [], [], []
    for file in files:
        path = find_file(directory, file)
        if path is None:
            raise DataNotFoundError(f"{directory}: missing {file.name}")
        try:
            content, record = read_verified(path, file)
        except (ChecksumError, DataFormatError) as exc:
            if not remove_invalid:
                raise
            path.unlink(missing_ok=True)
            warn(f"removed a corrupt file from the cache: {exc}", DataWarning)
            removed.append(path.name)
            continue
        contents.append(content)
        verified.append(record)
    if removed:
        raise DataNotFoundError(f"{directory}: removed corrupt {', '.join(removed)}")
    return tuple(contents), tuple(verified)
