"""The IDX format and compressed files: good files round-trip, malformed ones get clear errors."""

import gzip
import lzma
import struct
import tracemalloc

import numpy as np
import pytest

from csoftmax.data._idx import encode_idx, parse_idx, read_decompressed
from csoftmax.data import DataFormatError

IMAGES = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)


@pytest.mark.parametrize(
    "array",
    [
        IMAGES,
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([[-1, 2], [300, -40000]], dtype=np.int32),
        np.array([-128, 127], dtype=np.int8),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([1e300, -0.0], dtype=np.float64),
        np.array([[[[-7]]]], dtype=np.int16),
    ],
    ids=lambda a: f"{a.dtype}-{a.ndim}d",
)
def test_round_trip(array):
    parsed = parse_idx(encode_idx(array), "x")
    assert parsed.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(parsed, array)
    assert parsed.flags.c_contiguous and parsed.flags.writeable


def test_header_layout_matches_the_format():
    # 0x0000, type 0x08 (ubyte), 3 dims, then 2, 28, 28 big-endian: what the real files start with.
    assert encode_idx(IMAGES)[:16] == bytes.fromhex("00000803000000020000001c0000001c")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short for an IDX header"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "not an IDX file"),  # bad magic
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "not an IDX file"),  # unknown type code
        (b"\x00\x00\x08\x00", "claims 0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
        (encode_idx(IMAGES)[:-1], "truncated"),
        (encode_idx(IMAGES)[:100], "truncated"),
        (encode_idx(IMAGES) + b"\x00", "has trailing bytes"),
        (struct.pack(">HBBI", 0, 8, 1, 5) + b"\x00" * 3, "the header says 5 of uint8"),
    ],
)
def test_malformed_content_is_rejected_naming_the_file(content, message):
    with pytest.raises(DataFormatError, match=message) as info:
        parse_idx(content, "/data/bad-file")
    assert "/data/bad-file" in str(info.value)


def test_a_bogus_header_allocates_nothing_large():
    # The header claims 2^32-1 × 2^32-1 × 2^32-1 float64 (about 10^30 bytes) over 20 real bytes.
    content = struct.pack(">HBB3I", 0, 0x0E, 3, *(3 * [2**32 - 1])) + b"\x00" * 4
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match="truncated"):
            parse_idx(content, "bogus")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_encode_rejects_what_idx_cannot_store():
    with pytest.raises(TypeError, match="no IDX type code"):
        encode_idx(np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="1 to 8 dimensions"):
        encode_idx(np.array(5, dtype=np.uint8))


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, bytes], ids=["gzip", "xz", "plain"])
def test_read_decompressed_detects_the_compression_by_content(tmp_path, compress):
    content = encode_idx(IMAGES)
    path = tmp_path / "file.bin"  # the name says nothing: the magic bytes decide
    path.write_bytes(compress(content))
    assert read_decompressed(path, max_bytes=len(content)) == content


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, bytes], ids=["gzip", "xz", "plain"])
def test_read_decompressed_stops_past_max_bytes(tmp_path, compress):
    path = tmp_path / "big"
    path.write_bytes(compress(b"\x00" * 10_000))
    with pytest.raises(DataFormatError, match=r"big: content is larger than the expected 9999 bytes"):
        read_decompressed(path, max_bytes=9_999)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_truncated_compressed_stream_is_rejected_naming_the_file(tmp_path, compress):
    data = compress(encode_idx(IMAGES))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.gz: truncated"):
        read_decompressed(path, max_bytes=10**6)


def test_corrupt_gzip_is_rejected_naming_the_file(tmp_path):
    data = bytearray(gzip.compress(encode_idx(IMAGES)))
    data[-8] ^= 0xFF  # the CRC-32 of the content
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"flipped\.gz: corrupt gzip data"):
        read_decompressed(path, max_bytes=10**6)
