"""A build for instructions the running CPU lacks fails at import with an ImportError, never SIGILL.

The check runs before csoftmax._core is imported (with -march=native the compiler may use AVX-512
anywhere in _core, its module init included), from build-time facts in csoftmax._build_isa and the
CPU flags the kernel reports.
"""

import os
import subprocess
import sys
import tempfile

import pytest

import csoftmax
from csoftmax import _build_isa, _isa

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx avx2 fma
bogomips\t: 4800.00

processor\t: 1
flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx avx2 fma
"""


def test_flags_are_read_from_cpuinfo():
    assert _isa.cpu_flags_from_cpuinfo(CPUINFO) == {"fpu", "sse", "sse2", "pni", "ssse3", "sse4_1", "sse4_2",
                                                    "avx", "avx2", "fma"}
    assert _isa.cpu_flags_from_cpuinfo("processor\t: 0\n") is None  # no flags line: cannot tell


def test_compiler_macros_map_to_cpu_flags():
    # cpuinfo spells some features its own way (SSE3 is "pni"); macros of no instruction set are ignored
    macros = ["__SSE2__", "__SSE3__", "__AVX512F__", "__AVX512VNNI__", "__SSE2_MATH__", "__BMI__"]
    assert _isa.required_flags(macros) == ["sse2", "pni", "avx512f", "avx512_vnni", "bmi1"]


def test_missing_instructions_are_found():
    offered = _isa.cpu_flags_from_cpuinfo(CPUINFO)
    assert _isa.missing_flags(["__SSE2__", "__AVX2__", "__FMA__"], offered) == []
    assert _isa.missing_flags(["__SSE2__", "__AVX2__", "__AVX512F__", "__AVX512BW__"], offered) == [
        "avx512f", "avx512bw"]


def test_mismatch_raises_an_import_error_naming_both_and_the_rebuild():
    offered = _isa.cpu_flags_from_cpuinfo(CPUINFO)
    with pytest.raises(ImportError) as caught:
        _isa.check_cpu(["__SSE2__", "__AVX2__", "__AVX512F__", "__AVX512VL__"], offered, isa_name="AVX-512")
    message = str(caught.value)
    assert "avx512f" in message and "avx512vl" in message  # what the CPU lacks
    assert "AVX-512" in message  # what was compiled in
    assert "avx2" in message  # what the CPU offers
    assert "pip install . -Ccmake.define.CSOFTMAX_NATIVE=OFF" in message
    assert "rebuild" in message and "on this machine" in message


def test_no_cpu_information_means_no_verdict():
    _isa.check_cpu(["__AVX512F__"], None, isa_name="AVX-512")  # e.g. no /proc/cpuinfo: nothing to compare


def lowest_variant_simd():
    """The SIMD level of the build's lowest variant, the one module init is compiled for."""
    info = csoftmax.build_info()
    if info["variant"] == info["variants_compiled"][0]:
        return info["simd"]
    env = {**os.environ, "CSOFTMAX_ISA": info["variants_compiled"][0]}
    run = subprocess.run([sys.executable, "-c", "import csoftmax; print(csoftmax.build_info()['simd'])"],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tempfile.gettempdir())
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_the_installed_build_records_what_it_compiled_in():
    """_build_isa describes what importing _core needs: its lowest variant (the only one, natively)."""
    assert _build_isa.VARIANTS == csoftmax.build_info()["variants_compiled"]
    simd = lowest_variant_simd()
    expected = {"AVX-512": "__AVX512F__", "AVX2+FMA": "__AVX2__", "AVX": "__AVX__", "SSE2": "__SSE2__"}
    if simd in expected:
        assert expected[simd] in _build_isa.COMPILER_MACROS
    assert _build_isa.ISA_NAME == simd
    offered = _isa.cpu_flags()
    assert offered is None or _isa.missing_flags(_build_isa.COMPILER_MACROS, offered) == []  # we run here


def test_import_on_a_cpu_without_the_instructions_fails_cleanly(tmp_path):
    """`import csoftmax` with a /proc/cpuinfo that offers nothing but the FPU: an ImportError, not SIGILL."""
    code = """
import builtins, io
real_open = builtins.open
def fake_open(path, *args, **kwargs):
    if str(path) == "/proc/cpuinfo":
        return io.StringIO("processor\\t: 0\\nflags\\t\\t: fpu\\n")
    return real_open(path, *args, **kwargs)
builtins.open = fake_open
import csoftmax
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)  # not the source tree
    assert run.returncode == 1, (run.returncode, run.stderr)  # -4 would be SIGILL
    assert "ImportError" in run.stderr and "CSOFTMAX_NATIVE=OFF" in run.stderr
    assert "sse2" in run.stderr
