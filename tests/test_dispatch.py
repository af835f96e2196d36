"""Runtime instruction-set dispatch (bindings/module.cpp): each variant the CPU runs gives the reference's
results when forced with CSOFTMAX_ISA, bad settings are clean ImportErrors, and no code outside the
AVX-512 variant uses an AVX-512 instruction: statically (objdump of the built extension) and dynamically
(under valgrind, whose virtual CPU has no AVX-512).

Each variant runs in a fresh interpreter: the choice is made once, when csoftmax._core is imported.
"""

import bisect
import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
from helpers import assert_close

import csoftmax
from csoftmax import _core, _isa

INFO = csoftmax.build_info()
KERNELS = pathlib.Path(__file__).with_name("dispatch_kernels.py")
DISPATCHED = len(INFO["variants_compiled"]) > 1
NATIVE_ONLY = pytest.mark.skipif(
    DISPATCHED, reason="the native build's check; this is the dispatched build (-Ccmake.define.CSOFTMAX_NATIVE=OFF)")
DISPATCHED_ONLY = pytest.mark.skipif(
    not DISPATCHED, reason="checks the dispatched build (-Ccmake.define.CSOFTMAX_NATIVE=OFF, which CI runs); "
                           "this build has the one variant " + INFO["variant"])


def run_python(args, isa, *, prefix=(), timeout=120):
    """A fresh interpreter outside the source tree, with CSOFTMAX_ISA set to `isa` (None: unset)."""
    env = dict(os.environ)
    env.pop("CSOFTMAX_ISA", None)
    if isa is not None:
        env["CSOFTMAX_ISA"] = isa
    return subprocess.run([*prefix, sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=tempfile.gettempdir())  # not the source tree


def kernel_results(isa, prefix=()):
    run = run_python([str(KERNELS)], isa, prefix=prefix, timeout=300)
    assert run.returncode == 0, (isa, run.returncode, run.stderr[-3000:])
    return json.loads(run.stdout.splitlines()[-1])


# --- what runs -------------------------------------------------------------------------------------

def test_build_info_names_the_running_variant():
    assert INFO["variant"] in INFO["variants_compiled"]
    assert INFO["variant"] in INFO["variants_runnable"]
    assert set(INFO["variants_runnable"]) <= set(INFO["variants_compiled"])
    assert INFO["variant_forced"] == (os.environ.get("CSOFTMAX_ISA") or None)
    if INFO["variant_forced"] is None:  # automatic: the highest this CPU runs (variants are lowest first)
        assert INFO["variant"] == INFO["variants_runnable"][-1]


@NATIVE_ONLY
def test_the_native_build_has_one_variant():
    assert INFO["variants_compiled"] == ("native",) and INFO["native"]


@DISPATCHED_ONLY
def test_the_dispatched_build_has_a_variant_per_instruction_set():
    assert INFO["variants_compiled"][0] == "baseline" and not INFO["native"]
    if INFO["variants_compiled"] == ("baseline", "avx2", "avx512"):
        flags = _isa.cpu_flags()
        if flags is not None:  # /proc/cpuinfo and the compiler's check agree on what runs here
            expect = ["baseline"]
            expect += ["avx2"] * all(f in flags for f in ("avx2", "fma", "bmi1", "bmi2", "f16c", "abm", "movbe"))
            expect += ["avx512"] * (len(expect) == 2 and all(
                f"avx512{f}" in flags for f in ("f", "bw", "vl", "dq", "cd")))
            assert INFO["variants_runnable"] == tuple(expect)


@pytest.fixture(scope="module")
def results_by_variant():
    return {isa: kernel_results(isa) for isa in INFO["variants_runnable"]}


SIMD = {"baseline": ("SSE2", 4), "avx2": ("AVX2+FMA", 8), "avx512": ("AVX-512", 16)}
MARCH = {"baseline": "-march=x86-64 ", "avx2": "-march=x86-64-v3", "avx512": "-march=x86-64-v4"}


def test_each_runnable_variant_reports_itself_when_forced():
    for isa in INFO["variants_runnable"]:
        code = "import csoftmax, json; print(json.dumps(csoftmax.build_info()))"
        run = run_python(["-c", code], isa)
        assert run.returncode == 0, run.stderr
        info = json.loads(run.stdout)
        assert (info["variant"], info["variant_forced"]) == (isa, isa)
        if isa in SIMD and INFO["variants_compiled"][-1] == "avx512":  # the x86-64 portable build
            assert (info["simd"], info["simd_width"]) == SIMD[isa]
            assert MARCH[isa] in info["cxx_flags"] + " "


def test_each_runnable_variant_matches_the_reference(results_by_variant):
    # dispatch_kernels.py checks every result against csoftmax.reference and fails otherwise
    for isa, got in results_by_variant.items():
        assert got["variant"] == isa


def test_the_variants_agree_with_each_other(results_by_variant):
    """Different vector widths sum in different orders: float32 rounding apart, nothing more."""
    variants = list(results_by_variant)
    first = results_by_variant[variants[0]]["results"]
    for isa in variants[1:]:
        other = results_by_variant[isa]["results"]
        assert other.keys() == first.keys()
        for kernel, arrays in first.items():
            for i, (a, b) in enumerate(zip(arrays, other[kernel], strict=True)):
                assert_close(b, a, f"{isa} vs {variants[0]}: {kernel}[{i}]", rtol=1e-5, atol=1e-6)


# --- bad settings --------------------------------------------------------------------------------------

def import_error(isa):
    run = run_python(["-c", "import csoftmax"], isa)
    assert run.returncode == 1, (isa, run.returncode, run.stderr)  # not a crash
    return run.stderr.strip().splitlines()[-1]


def test_an_unknown_variant_is_an_import_error_listing_the_names():
    message = import_error("avx9000")
    assert message.startswith("ImportError: CSOFTMAX_ISA=avx9000: unknown instruction-set variant")
    assert "baseline, avx2, avx512, native" in message


def test_a_variant_not_compiled_in_is_an_import_error_naming_those_that_are():
    missing = next(v for v in ("avx2", "native") if v not in INFO["variants_compiled"])
    message = import_error(missing)
    assert f"CSOFTMAX_ISA={missing}: this build of csoftmax has no {missing} variant" in message
    assert "it was compiled with " + ", ".join(INFO["variants_compiled"]) in message


def test_an_empty_setting_means_automatic():
    run = run_python(["-c", "import csoftmax; print(csoftmax.build_info()['variant'])"], "")
    assert run.returncode == 0 and run.stdout.split() == [INFO["variants_runnable"][-1]], run.stderr


# --- no AVX-512 outside the avx512 variant: the binary ------------------------------------------------

AVX512_REGISTER = re.compile(r"%zmm\d|%k[0-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b")
YMM_REGISTER = re.compile(r"%ymm\d")
VEX_MNEMONIC = re.compile(r"v[a-z0-9]+\b")  # every VEX/EVEX instruction; SSE2 has no mnemonic starting with v
FUNCTION = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSTRUCTION = re.compile(r"^\s+([0-9a-f]+):\t(.*)$")
REFERENCE = re.compile(r"(?:^(?:call|jmp|j[a-z]+)\s+|# )([0-9a-f]+) <")


def disassemble(path):
    """{start address: (demangled name, [instruction text], {addresses it references}, last address)}."""
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(path)], capture_output=True,
                          text=True, check=True).stdout
    functions, start = {}, None
    for line in text.splitlines():
        head = FUNCTION.match(line)
        if head:
            start = int(head.group(1), 16)
            functions[start] = (head.group(2), [], set(), [start])
            continue
        instruction = INSTRUCTION.match(line)
        if instruction and start is not None:
            name, instructions, targets, last = functions[start]
            instructions.append(instruction.group(2).strip())
            targets.update(int(a, 16) for a in REFERENCE.findall(instruction.group(2)))
            last[0] = int(instruction.group(1), 16)
    return functions


def referrers(functions):
    """{function start: starts of the other functions that reference it}. A call through the PLT (libstdc++'s
    templates keep default visibility, so calls to them go through it) counts as a reference to the
    function the stub stands for, the one definition the linker kept."""
    starts = sorted(functions)
    by_name = {name: start for start, (name, *_) in functions.items()}
    found = {start: set() for start in starts}
    for start, (_, _, targets, _) in functions.items():
        if functions[start][0].endswith("@plt"):
            continue  # the stub's own jump through the GOT
        for target in targets:
            i = bisect.bisect_right(starts, target) - 1
            if i < 0 or target > functions[starts[i]][3][0]:
                continue  # not code of this binary
            owner = starts[i]
            name = functions[owner][0]
            if name.endswith("@plt"):
                owner = by_name.get(name[:-len("@plt")], owner)
            if owner != start and functions[start][0] != functions[owner][0] + " [clone .cold]":
                found[owner].add(start)  # (a function's cold part jumping back into it is the function itself)
    return found


def local_function_variants(path, variants):
    """{address: variant} of the local (file-scope) functions of each variant's objects. The linker writes
    each object's local symbols after a FILE symbol naming its source, in link order (CMakeLists.txt):
    module init, then each variant's sources, each variant starting with register_variant.cpp."""
    text = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True, check=True).stdout
    found, variant, groups = {}, None, iter(variants)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[4] != "LOCAL":
            continue
        if fields[3] == "FILE":
            name = fields[7] if len(fields) > 7 else ""
            if name == "register_variant.cpp":
                variant = next(groups)
            elif not (name.startswith("register_") and name.endswith(".cpp")):
                variant = None  # module init, the C runtime, or the linker's own
        elif fields[3] == "FUNC" and variant is not None:
            found[int(fields[1], 16)] = variant
    return found


def confined(functions, marks, local_variants):
    """Start addresses of the code that runs only inside a variant named by one of `marks`: functions named
    csoftmax::<mark>::..., and, to a fixed point, every function referenced (called, jumped to, address
    taken) only from such code, e.g. a libstdc++ template over a vector type only that variant uses
    (`std::vector<float __vector(16)>`), whose name carries no namespace. A function never referenced from
    code could be reached through data, so it is confined only if it is local to one of the variant's
    objects (`local_variants`, {address: variant}; such as the per-object copies of pybind11's helpers,
    their optimized clones `[clone .isra.0]`, `.cold`): data of that object reaches it then."""
    refs = referrers(functions)
    inside = {s for s, (name, *_) in functions.items() if any(f"csoftmax::{m}::" in name for m in marks)}
    grew = True
    while grew:
        grew = False
        for start, by in refs.items():
            if start not in inside and by <= inside and (by or local_variants.get(start) in marks):
                inside.add(start)
                grew = True
    return inside


def offending(functions, inside, uses):
    return sorted({functions[s][0][:160] for s, (_, instructions, *_) in functions.items()
                   if s not in inside and any(uses(i) for i in instructions)})


@DISPATCHED_ONLY
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils, installed with g++)")
def test_only_the_avx512_variant_uses_avx512_and_only_avx2_or_avx512_uses_avx():
    path = pathlib.Path(_core.__file__)
    functions = disassemble(path)
    names = [name for name, *_ in functions.values()]
    # the shipped extension keeps its symbol table (pyproject.toml: install.strip = false)
    assert sum("csoftmax::avx512::" in n for n in names) > 50, f"{path} has no symbols: was it stripped?"
    assert any("csoftmax::baseline::" in n for n in names) and any("csoftmax::avx2::" in n for n in names)

    local_variants = local_function_variants(path, INFO["variants_compiled"])
    assert set(local_variants.values()) == set(INFO["variants_compiled"])
    avx512_only = confined(functions, ["avx512"], local_variants)
    assert offending(functions, avx512_only, AVX512_REGISTER.search) == []
    avx_only = confined(functions, ["avx2", "avx512"], local_variants)
    assert offending(functions, avx_only, lambda i: YMM_REGISTER.search(i) or VEX_MNEMONIC.match(i)) == []
    # and the kernels do use the instructions their variant was compiled for
    uses = {s for s, (_, instructions, *_) in functions.items() if any(AVX512_REGISTER.search(i) for i in instructions)}
    assert uses and uses <= avx512_only


def test_the_checker_finds_avx512_outside_its_variant():
    """The checks above on a made-up disassembly: a zmm instruction in a clone called from baseline code."""
    functions = {
        0x10: ("csoftmax::baseline::bindings::f()", ["call   30 <helper [clone .isra.0]>"], {0x30}, [0x18]),
        0x20: ("csoftmax::avx512::bindings::g()", ["call   40 <other [clone .isra.0]>", "call   60 <h()@plt>"],
               {0x40, 0x60}, [0x28]),
        0x30: ("helper [clone .isra.0]", ["vaddps %zmm0,%zmm1,%zmm2"], set(), [0x38]),
        0x40: ("other [clone .isra.0]", ["vaddps %zmm0,%zmm1,%zmm2"], set(), [0x48]),
        0x50: ("unreferenced()", ["kmovw  %k1,%eax"], set(), [0x58]),
        0x58: ("local_to_avx512()", ["kmovw  %k1,%eax"], set(), [0x5c]),
        0x60: ("h()@plt", ["jmp    *0x1000(%rip)        # 2000 <h()@@Base+0x1000>"], {0x2000}, [0x68]),
        0x70: ("h()", ["vmovaps %zmm0,(%rdi)", "jne    80 <h() [clone .cold]>"], {0x80}, [0x78]),
        0x80: ("h() [clone .cold]", ["vmovaps %zmm0,(%rdi)", "jmp    74 <h()+0x4>"], {0x74}, [0x88]),
    }
    inside = confined(functions, ["avx512"], {0x58: "avx512", 0x50: "baseline"})
    assert inside == {0x20, 0x40, 0x58, 0x70, 0x80}  # h() is called through its PLT stub, from avx512 code only
    assert offending(functions, inside, AVX512_REGISTER.search) == ["helper [clone .isra.0]", "unreferenced()"]


# --- the peak every variant's step is compared to ----------------------------------------------------

@functools.cache
def disassembly():
    return subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(pathlib.Path(_core.__file__))],
                          capture_output=True, text=True, check=True).stdout


def probe_loop(variant):
    """The instructions of the loop of csoftmax::<variant>::fma_chains (the FMA peak probe), from its one
    backward jump to the jump itself."""
    name = f"csoftmax::{variant}::fma_chains(long, float)"
    body = disassembly().split(f"<{name}>:\n", 1)[1].split("\n\n", 1)[0]
    lines = [INSTRUCTION.match(line) for line in body.splitlines()]
    code = [(int(m.group(1), 16), m.group(2).strip()) for m in lines if m]
    jumps = [(address, int(target, 16)) for address, instruction in code
             for target in re.findall(r"^j[a-z]+\s+([0-9a-f]+) <", instruction) if int(target, 16) < address]
    assert len(jumps) == 1, f"{name}: expected one loop, found backward jumps {jumps}"
    end, start = jumps[0]
    return [instruction for address, instruction in code if start <= address <= end]


@DISPATCHED_ONLY
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils, installed with g++)")
@pytest.mark.parametrize("variant", INFO["variants_compiled"])
def test_the_peak_probe_keeps_every_chain_in_registers(variant):
    """A chain kept on the stack costs a store and a load a round and caps the probe below the real peak
    (with 16 chains in AVX2's 16 registers it read 65 GFLOP/s on a Zen 4 core that ran the step at 90)."""
    loop = probe_loop(variant)
    arithmetic = [i for i in loop if re.match(r"v?(fmadd|mulps|addps)", i)]
    assert len(arithmetic) >= 8, loop
    assert [i for i in loop if "(%rsp)" in i or "(%rbp)" in i] == [], f"{variant}: the probe's loop touches memory"


# --- no AVX-512 outside the avx512 variant: a CPU without it --------------------------------------------

# The tool "none": the same virtual CPU without memcheck's instrumentation, which would report CPython's
# own uninitialised reads (it has no suppression file here) and run several times slower. An instruction
# valgrind cannot execute ends the process with SIGILL all the same, which the exit status shows.
VALGRIND = ("valgrind", "--tool=none", "-q")


@DISPATCHED_ONLY
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)")
def test_under_valgrind_the_choice_is_avx2_and_every_kernel_runs():
    """valgrind's virtual CPU offers AVX2 but not AVX-512 (valgrind cannot execute it): the automatic choice
    must be avx2, and no instruction of the run may be one it lacks (that would be SIGILL)."""
    got = kernel_results(None, prefix=VALGRIND)
    assert got["variant"] == ("avx2" if "avx2" in INFO["variants_runnable"] else "baseline")  # (as the host)


@DISPATCHED_ONLY
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)")
def test_under_valgrind_forcing_avx512_is_an_import_error():
    run = run_python(["-c", "import csoftmax"], "avx512", prefix=VALGRIND)
    assert run.returncode == 1, (run.returncode, run.stderr[-3000:])
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: CSOFTMAX_ISA=avx512: this CPU cannot run the avx512 variant")
    assert "avx512f" in message
