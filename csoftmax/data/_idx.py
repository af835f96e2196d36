"""The IDX file format (the format of MNIST and Fashion-MNIST), plain or gzip/xz-compressed.

An IDX file is a header followed by the array in C order, big-endian:

    0x00 0x00 <dtype code> <ndim>   then ndim dimensions as big-endian uint32, then the data.

Everything here is checked against the file's actual length before any array is made, so a bogus
header can never drive a large allocation: memory use is bounded by the bytes actually read, and
reading is itself bounded by the caller's `max_bytes`.
"""

from __future__ import annotations

import gzip
import lzma
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ._errors import DataFormatError

# IDX type codes → NumPy dtypes (big-endian, as the format stores them).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
MAX_IDX_DIMS = 8  # real IDX files have 1 to 3; more is a corrupt header

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"


def compression_of(path: Path) -> str:
    """'gzip', 'xz' or 'none', from the file's first bytes (re-packagers rename files; magic doesn't lie)."""
    with open(path, "rb") as file:
        head = file.read(len(XZ_MAGIC))
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def read_decompressed(path: Path, max_bytes: int) -> bytes:
    """The content of `path`, decompressed if it is gzip or xz, reading at most `max_bytes + 1` bytes.

    Raises DataFormatError naming the file if the content is longer than `max_bytes` (so a
    decompression bomb or a wrong file costs at most that much memory) or the compressed stream is
    truncated or corrupt.
    """
    path = Path(path)
    compression = compression_of(path)
    opener = {"gzip": gzip.open, "xz": lzma.open, "none": open}[compression]
    try:
        with opener(path, "rb") as file:
            content = file.read(max_bytes + 1)
    except EOFError as exc:
        raise DataFormatError(f"{path}: truncated {compression} stream ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error, lzma.LZMAError) as exc:
        raise DataFormatError(f"{path}: corrupt {compression} data ({exc})") from exc
    if len(content) > max_bytes:
        raise DataFormatError(f"{path}: content is larger than the expected {max_bytes} bytes")
    return content


def parse_idx(content: bytes, name: str) -> np.ndarray:
    """The array stored in IDX bytes `content`, as a new, writable, native-endian C-contiguous array.

    `name` (usually the file's path) is used in error messages. Raises DataFormatError if the magic
    number, the dimensions and the length disagree.
    """
    if len(content) < 4:
        raise DataFormatError(f"{name}: too short for an IDX header ({len(content)} bytes)")
    zero, type_code, ndim = struct.unpack_from(">HBB", content)
    if zero != 0 or type_code not in IDX_DTYPES:
        raise DataFormatError(
            f"{name}: not an IDX file (magic number 0x{content[:4].hex()}; expected 0x0000 followed by a type "
            f"code among {', '.join(f'0x{code:02x}' for code in IDX_DTYPES)} and the number of dimensions)"
        )
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise DataFormatError(f"{name}: IDX header claims {ndim} dimensions (expected 1 to {MAX_IDX_DIMS})")
    header_bytes = 4 + 4 * ndim
    if len(content) < header_bytes:
        raise DataFormatError(f"{name}: truncated IDX header ({len(content)} bytes, the header needs {header_bytes})")
    shape = struct.unpack_from(f">{ndim}I", content, 4)
    dtype = IDX_DTYPES[type_code]
    # Python integers: a bogus header cannot overflow this product.
    expected_bytes = header_bytes + math.prod(shape) * dtype.itemsize
    if len(content) != expected_bytes:
        problem = "truncated" if len(content) < expected_bytes else "has trailing bytes"
        raise DataFormatError(
            f"{name}: {problem}: the header says {'x'.join(map(str, shape))} of {dtype.name} "
            f"({expected_bytes} bytes with the header), the content has {len(content)} bytes"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_bytes).reshape(shape)
    return array.astype(dtype.newbyteorder("="), order="C", copy=True)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for `array` (any of the IDX dtypes, 1 to MAX_IDX_DIMS dimensions)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in IDX_CODES:
        raise TypeError(f"array: dtype {array.dtype} has no IDX type code")
    if not 1 <= array.ndim <= MAX_IDX_DIMS:
        raise ValueError(f"array: IDX stores 1 to {MAX_IDX_DIMS} dimensions, got {array.ndim}")
    code = IDX_CODES[native]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
