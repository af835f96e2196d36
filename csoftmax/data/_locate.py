"""Where a full copy of Fashion-MNIST can be, in the order it is looked for, and reading it from there.

1. the caller's `data_dir` — used alone: missing files are downloaded into it (or the call fails), and a
   corrupt file raises;
2. the directory in $CSOFTMAX_DATA;
3. the user cache directory ($CSOFTMAX_CACHE_DIR, else the platform's cache directory) + /fashion-mnist;
4. the Debian/Ubuntu package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist);
5. the mirrors, downloading into the cache.

A location is used only when all four files are there. A corrupt file in a directory the user or the
system owns raises (it must not go unnoticed); one in the cache, which this package owns, is removed
with a warning and fetched again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _files
from ._errors import DataNotFoundError, DownloadError
from ._files import DataFile, FoundData, find_file, read_all

DATA_ENV = "CSOFTMAX_DATA"
CACHE_ENV = "CSOFTMAX_CACHE_DIR"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
# Read at call time, so tests can replace it.
SYSTEM_DATA_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


@dataclass(frozen=True)
class _Location:
    directory: Path
    source: str  # how the dataset will describe where it came from
    is_cache: bool = False


def cache_dir() -> Path:
    """The package's cache directory: $CSOFTMAX_CACHE_DIR, else the platform convention
    ($XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows) + /csoftmax."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "csoftmax"


def fashion_mnist_cache_dir() -> Path:
    return cache_dir() / "fashion-mnist"


def find_full_data(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    progress: bool | None = None,
) -> FoundData:
    """Find, fetch if allowed, and verify the full dataset (see the module docstring for the order).

    Raises DataNotFoundError saying where it looked when no complete copy is found or fetched; and
    ChecksumError / DataFormatError for a corrupt file in a directory the user or the system owns.
    """
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        return _read_or_fetch(_Location(directory, str(directory)), download, mirrors, progress)

    notes = []
    for location in _search_locations():
        missing = _missing_files(location.directory)
        if missing:
            notes.append(f"{location.source}: missing {_names(missing)}")
            continue
        try:
            return _read_all(location)
        except DataNotFoundError as exc:  # the cache had corrupt files, now removed
            notes.append(str(exc))

    if not download:
        notes.append("downloading is off")
    elif not _mirrors(mirrors):
        from ._download import MIRRORS_ENV

        notes.append(f"no download mirror configured (${MIRRORS_ENV} is empty)")
    else:
        try:
            return _read_or_fetch(_cache_location(), download, mirrors, progress)
        except DownloadError as exc:
            notes.append(str(exc))
    raise DataNotFoundError("Fashion-MNIST not found: " + "; ".join(notes))


def _mirrors(given: Sequence[str] | None) -> tuple[str, ...]:
    """The mirrors to try: those given, else the configured ones. The download module (urllib,
    http.client, ssl: a fifth of `import csoftmax`) is imported only when a download may happen."""
    from ._download import configured_mirrors

    return configured_mirrors() if given is None else tuple(given)


def _search_locations() -> list[_Location]:
    locations = []
    if os.environ.get(DATA_ENV):
        directory = Path(os.environ[DATA_ENV]).expanduser()
        locations.append(_Location(directory, f"{directory} (${DATA_ENV})"))
    locations.append(_cache_location())
    locations += [_Location(d, f"{d} (Debian package {DEBIAN_PACKAGE})") for d in SYSTEM_DATA_DIRS]
    return locations


def _cache_location() -> _Location:
    cache = fashion_mnist_cache_dir()
    return _Location(cache, f"{cache} (cache)", is_cache=True)


def _missing_files(directory: Path) -> list[DataFile]:
    return [file for file in _files.FASHION_MNIST_FILES if find_file(directory, file) is None]


def _names(files: Sequence[DataFile]) -> str:
    if len(files) == len(_files.FASHION_MNIST_FILES):
        return "all four files"
    return ", ".join(file.name for file in files)


def _read_or_fetch(location: _Location, download: bool, mirrors: Sequence[str] | None,
                   progress: bool | None) -> FoundData:
    """Read the four files from `location`, first downloading the missing ones into it if allowed."""
    missing = _missing_files(location.directory)
    if missing and not download:
        raise DataNotFoundError(f"{location.directory}: missing {_names(missing)} (and downloading is off)")
    sources = set()
    if missing:
        from ._download import download_verified

        mirrors = _mirrors(mirrors)
    for file in missing:
        _, url = download_verified(file, location.directory, mirrors, progress=progress)
        sources.add(url.rsplit("/", 1)[0])
    found = _read_all(location)
    if sources:
        found = FoundData(found.contents, found.files, f"{found.source}, downloaded from {', '.join(sorted(sources))}")
    return found


def _read_all(location: _Location) -> FoundData:
    contents, verified = read_all(location.directory, _files.FASHION_MNIST_FILES, remove_invalid=location.is_cache)
    return FoundData(contents, verified, location.source)
