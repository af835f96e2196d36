"""SoftmaxRegression.load against crafted model files: every member's name, dtype, shape and declared
size is checked from the zip directory and the .npy headers before any array data is read, so a small
hostile file is refused quickly, in little memory, with a message naming the problem."""

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from csoftmax.models.softmax_regression import MAX_MODEL_BYTES, ModelFileError, SoftmaxRegression

SMALL_PEAK = 4 << 20  # bytes: the checks read headers only (a real 784 x 10 model is 31 KB)


def npy(shape, descr="<f4", data=None):
    """A .npy member: a version 1.0 header declaring (descr, shape), then `data` (default: the zeros it
    declares, which must then be small)."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    if data is None:
        data = bytes(int(np.prod(shape)) * np.dtype(descr).itemsize)
    return stream.getvalue() + data


GOOD = {"W.npy": npy((784, 10)), "b.npy": npy((10,)), "format.npy": npy((), "<i8", struct.pack("<q", 1))}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def load_measured(path):
    """SoftmaxRegression.load(path) under tracemalloc (NumPy reports its buffers to it): (result or the
    exception, peak bytes)."""
    tracemalloc.start()
    try:
        try:
            outcome = SoftmaxRegression.load(path)
        except Exception as exc:  # noqa: BLE001 -- the test looks at what was raised
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_refused(path, message):
    outcome, peak = load_measured(path)
    assert isinstance(outcome, ModelFileError), repr(outcome)
    assert str(path) in str(outcome) and message in str(outcome), str(outcome)
    assert peak < SMALL_PEAK, f"refusing {path.name} took {peak / 1e6:.1f} MB"


def test_a_crafted_file_of_the_right_form_loads(tmp_path):
    """The crafting helpers make what np.savez makes: the refusals below are about what was changed."""
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        model, peak = load_measured(write_zip(tmp_path / "good.npz", GOOD, compression))
        assert isinstance(model, SoftmaxRegression) and (model.num_inputs, model.num_outputs) == (784, 10)
        assert not model.W.any() and peak < SMALL_PEAK


def test_np_savez_compressed_models_load(tmp_path):
    model = SoftmaxRegression(seed=1)
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, W=np.ascontiguousarray(model.W), b=model.b, format=np.int64(1))
    loaded = SoftmaxRegression.load(path)
    np.testing.assert_array_equal(loaded.W, model.W)


def test_a_header_claiming_a_huge_shape(tmp_path):
    """Was a MemoryError (the CLI's "internal error") after trying to allocate 44 TB."""
    path = write_zip(tmp_path / "huge.npz", {**GOOD, "W.npy": npy((2**40, 10), data=bytes(40))})
    assert_refused(path, f"W of shape (1099511627776, 10) float32 is larger than a model file may hold "
                         f"({MAX_MODEL_BYTES:,} bytes)")


def test_a_header_disagreeing_with_its_member_size(tmp_path):
    path = write_zip(tmp_path / "short.npz", {**GOOD, "W.npy": npy((784, 10), data=bytes(400))})
    assert_refused(path, "W.npy: its header declares 31,360 bytes of data (float32 (784, 10)), the member holds 400")


def _deflated_zeros(archive, name, size, prefix=b""):
    """Add a member of `prefix` and `size` zero bytes, deflated, without holding them in memory."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as member:
        member.write(prefix)
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            member.write(chunk)


def test_a_header_declaring_a_200_MB_length_is_never_read(tmp_path):
    """NumPy's header reader reads the length a header states before it refuses a long one."""
    path = write_zip(tmp_path / "long-header.npz", {"b.npy": GOOD["b.npy"], "format.npy": GOOD["format.npy"]})
    size = 200 << 20
    with zipfile.ZipFile(path, "a") as archive:
        _deflated_zeros(archive, "W.npy", size, prefix=b"\x93NUMPY\x02\x00" + struct.pack("<I", size))
    assert path.stat().st_size < 1 << 20
    assert_refused(path, "W.npy: not a .npy array (a header of 209,715,200 bytes, more than 10,000)")


def test_an_extra_member_declaring_100_MB_is_never_read(tmp_path):
    path = write_zip(tmp_path / "extra.npz", GOOD)
    with zipfile.ZipFile(path, "a") as archive:
        _deflated_zeros(archive, "padding.npy", 100 << 20)
    assert path.stat().st_size < 1 << 20  # the whole file is small
    assert_refused(path, "expected the arrays ['W', 'b', 'format'], found ['W', 'b', 'format', 'padding']")


@pytest.mark.parametrize(
    "members, message",
    [
        ({"W.npy": GOOD["W.npy"], "b.npy": GOOD["b.npy"]}, "expected the arrays ['W', 'b', 'format'], found ['W', 'b']"),
        ({**GOOD, "notes.txt": b"hello"}, "found ['W', 'b', 'format', 'notes.txt']"),
        ({**GOOD, "W.npy": npy((784, 10), "<f8")}, "W must be float32 (D, C), got float64 (784, 10)"),
        ({**GOOD, "W.npy": npy((10,), "|O", b"")}, "W must be float32 (D, C), got object (10,)"),
        ({**GOOD, "W.npy": npy((784, 0))}, "W must be float32 (D, C), got float32 (784, 0)"),
        ({**GOOD, "b.npy": npy((9,))}, "b must be float32 (10,) to match W, got float32 (9,)"),
        ({**GOOD, "format.npy": npy((), "<f8", bytes(8))}, "unknown model format"),
        ({**GOOD, "W.npy": b"\x93NUMPY\x09\x00" + bytes(100)}, "W.npy: not a .npy array"),
        ({**GOOD, "W.npy": b"not an array at all"}, "W.npy: not a .npy array"),
    ],
)
def test_members_are_checked_from_their_headers(tmp_path, members, message):
    assert_refused(write_zip(tmp_path / "bad.npz", members), message)


def _forge_declared_size(path, member, size):
    """Overwrite the uncompressed size of `member` in its local header and in the central directory."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    data[offset + 22 : offset + 26] = struct.pack("<I", size)  # local file header: uncompressed size
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(member)] != member.encode():  # the entry's file name
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 24 : central + 28] = struct.pack("<I", size)  # central directory: uncompressed size
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "compression, message",
    [
        (zipfile.ZIP_DEFLATED, "W.npy: declares 2,000,000,000 bytes uncompressed from"),
        (zipfile.ZIP_STORED, "W.npy: declares 2,000,000,000 bytes uncompressed from"),
    ],
)
def test_a_forged_uncompressed_size(tmp_path, compression, message):
    path = write_zip(tmp_path / "forged.npz", GOOD, compression)
    _forge_declared_size(path, "W.npy", 2_000_000_000)
    assert_refused(path, message)


def test_other_compression_methods_are_refused(tmp_path):
    path = write_zip(tmp_path / "bz2.npz", GOOD, zipfile.ZIP_BZIP2)
    assert_refused(path, "W.npy: compressed with method 12")


def test_a_deflated_member_with_a_wrong_size_stays_small_and_is_refused(tmp_path):
    """A deflate stream that decompresses to more than its member declares is cut off by the CRC check."""
    path = tmp_path / "lying.npz"
    write_zip(path, GOOD, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as archive:
        real = archive.getinfo("W.npy").file_size
    _forge_declared_size(path, "W.npy", real - 4)
    assert_refused(path, "W.npy")

