"""Reading a model's .npz archive so that a hostile file costs no more than a look at its headers.

An .npz file is a zip archive of .npy members. Everything that decides how much will be read is checked
first, from the zip directory and each member's .npy header, and only then is any array data read:

- the members are exactly the expected names, stored (np.savez) or deflated (np.savez_compressed);
- each header is a .npy header (versions 1.0 and 2.0) of at most MAX_HEADER_BYTES, whose dtype and
  shape the caller accepts, and whose data is no larger than MAX_MODEL_BYTES in all;
- each member's declared uncompressed size is its header plus exactly the data the header declares,
  and one its compressed size can produce (equal for a stored member; at most DEFLATE_MAX_RATIO times
  larger for a deflated one): the zip reader stops at the declared size, so nothing more is ever
  decompressed, and a forged size is refused before a buffer of that size is allocated.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping

import numpy as np

# W and b together: a 784 x 10 Fashion-MNIST model is 31 KB; 1 GiB is 268 million weights, far beyond
# any image classifier this class trains, and a bound on what a file can make us allocate.
MAX_MODEL_BYTES = 1 << 30
# Deflate cannot expand data by more than 1032:1 (a 258-byte match per 2 bits, RFC 1951); a member
# claiming more has a forged size.
DEFLATE_MAX_RATIO = 1032
_METHODS = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: DEFLATE_MAX_RATIO}
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_LENGTH_BYTES = {(1, 0): 2, (2, 0): 4}  # the little-endian header length after the magic string
# NumPy reads a header of whatever length the file states before judging it (refusing more than 10,000
# characters only afterwards); a header's length is checked here first. A model's header is 128 bytes.
MAX_HEADER_BYTES = 10_000

# check(name, dtype, shape, {earlier name: (dtype, shape)}) -> what is wrong with that array, or None.
HeaderCheck = Callable[[str, np.dtype, tuple, dict], "str | None"]


class ModelFileError(ValueError):
    """A file that is not a readable csoftmax model (.npz with W (D, C) and b (C,), float32)."""


def read_checked_npz(path: str | os.PathLike, check_header: HeaderCheck, names: tuple[str, ...]) -> dict:
    """The arrays `names` of the .npz file at `path`, after every member passed the checks above and
    `check_header` (called in the order of `names`). Raises ModelFileError naming the file and the problem;
    FileNotFoundError, IsADirectoryError and PermissionError as open() does."""
    with open(path, "rb") as file:  # open's own errors pass unchanged: the caller reports them
        try:
            with zipfile.ZipFile(file) as archive:
                members = _expected_members(archive, names, path)
                headers = {}
                for name in names:
                    dtype, shape, data_offset = _read_header(archive, members[name], path)
                    problem = check_header(name, dtype, shape, headers)
                    if problem is not None:
                        raise ModelFileError(f"{path}: {problem}")
                    _check_declared_size(members[name], dtype, shape, data_offset, path)
                    headers[name] = (dtype, shape)
                total = sum(math.prod(shape) * dtype.itemsize for dtype, shape in headers.values())
                if total > MAX_MODEL_BYTES:
                    raise ModelFileError(f"{path}: its arrays hold {total:,} bytes, more than a model file may "
                                         f"hold ({MAX_MODEL_BYTES:,} bytes)")
                arrays = {}
                for name in names:
                    with archive.open(members[name]) as stream:
                        arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
                return arrays
        except ModelFileError:
            raise
        except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as exc:
            raise ModelFileError(f"{path}: not a readable .npz model file ({exc})") from None


def _expected_members(archive: zipfile.ZipFile, names: tuple[str, ...], path) -> Mapping[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    found = sorted(info.filename.removesuffix(".npy") for info in infos)
    if found != sorted(names) or len(infos) != len(names):
        raise ModelFileError(f"{path}: expected the arrays {sorted(names)}, found {found}")
    members = {info.filename.removesuffix(".npy"): info for info in infos}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(f"{path}: expected the arrays {sorted(names)}, found {found}")
        if info.compress_type not in _METHODS:
            raise ModelFileError(f"{path}: {info.filename}: compressed with method {info.compress_type}; a model "
                                 "file's members are stored (np.savez) or deflated (np.savez_compressed)")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: {info.filename}: encrypted")
    return members


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> tuple[np.dtype, tuple, int]:
    """(dtype, shape, offset of the data) from the member's .npy header, reading nothing past it."""
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version not in _HEADER_READERS:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            length = stream.read(_LENGTH_BYTES[version])
            header_bytes = int.from_bytes(length, "little")
            if header_bytes > MAX_HEADER_BYTES:
                raise ValueError(f"a header of {header_bytes:,} bytes, more than {MAX_HEADER_BYTES:,}")
            header = stream.read(header_bytes)
            shape, fortran_order, dtype = _HEADER_READERS[version](io.BytesIO(length + header))
        except (ValueError, EOFError, SyntaxError) as exc:
            raise ModelFileError(f"{path}: {info.filename}: not a .npy array ({exc})") from None
        return dtype, tuple(shape), stream.tell()


def _check_declared_size(info: zipfile.ZipInfo, dtype: np.dtype, shape: tuple, data_offset: int, path) -> None:
    # The shape alone can be absurd (a 44 TB array in a 300-byte file): refuse it before any arithmetic
    # with the zip's sizes could suggest a buffer of that size.
    data_bytes = math.prod(shape) * dtype.itemsize
    name = info.filename.removesuffix(".npy")
    if data_bytes > MAX_MODEL_BYTES:
        raise ModelFileError(f"{path}: {name} of shape {shape} {dtype} is larger than a model file may hold "
                             f"({MAX_MODEL_BYTES:,} bytes)")
    most = info.compress_size * _METHODS[info.compress_type]
    if info.file_size > most:
        kind = "stored" if info.compress_type == zipfile.ZIP_STORED else "compressed"
        raise ModelFileError(f"{path}: {info.filename}: declares {info.file_size:,} bytes uncompressed from "
                             f"{info.compress_size:,} {kind} bytes: a forged size")
    if info.file_size - data_offset != data_bytes:
        raise ModelFileError(f"{path}: {info.filename}: its header declares {data_bytes:,} bytes of data "
                             f"({dtype} {shape}), the member holds {info.file_size - data_offset:,}")
