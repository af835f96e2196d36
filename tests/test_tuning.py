"""The cache blocks derived from the machine's facts (src_cpp/csoftmax/tuning.hpp, machine.hpp), run
through the C++ rules themselves (_core.derive_tuning): on both project CPUs, on absurd or missing
facts, and the running machine's (_core.tuning) against what the OS reports independently."""

import os
import pathlib

import pytest

import csoftmax
from csoftmax import _core

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
ZEN5 = dict(l1d=48 * KIB, l2=1 * MIB, l3=32 * MIB, line=64, processors=2)  # DESIGN.md
XEON = dict(l1d=48 * KIB, l2=2 * MIB, l3=480 * MIB, line=64, processors=2)  # this Intel host's lscpu
MICRO_ROWS, MICRO_COLS = _core.tuning()["micro_tile"]


def blocks(t):
    return t["block_k"], t["block_n"], t["block_m"], t["max_row_block"]


# (block_k, block_n, block_m, max_row_block) per register tile (mr, nr), worked out by hand from the
# rules in tuning.hpp. AVX-512 on Zen 5 gives the blocks measured there before they were derived
# (14 KB A + 32 KB B micro-panels in L1d, the 512 KB B block in L2, 336 rows); the Xeon's 2 MB L2
# doubles the two L2 blocks. The narrower tiles reach the 512 cap on k.
EXPECTED = {
    (14, 32): {"zen5": (256, 512, 336, 336), "xeon": (256, 1024, 672, 672)},  # AVX-512
    (6, 16): {"zen5": (512, 256, 168, 168), "xeon": (512, 512, 336, 336)},  # AVX2+FMA
    (6, 8): {"zen5": (512, 256, 168, 168), "xeon": (512, 512, 336, 336)},  # SSE2, NEON
}


@pytest.mark.skipif((MICRO_ROWS, MICRO_COLS) not in EXPECTED, reason="a register tile no build of the project has")
@pytest.mark.parametrize("cpu, facts", [("zen5", ZEN5), ("xeon", XEON)])
def test_blocks_of_the_two_project_cpus(cpu, facts):
    assert blocks(_core.derive_tuning(**facts)) == EXPECTED[MICRO_ROWS, MICRO_COLS][cpu]


@pytest.mark.parametrize("facts", [ZEN5, XEON, dict(ZEN5, l1d=32 * KIB, l2=256 * KIB), dict(XEON, l2=64 * MIB)],
                         ids=["zen5", "xeon", "small-caches", "huge-l2"])
def test_the_rules_hold_for_the_builds_tile(facts):
    t = _core.derive_tuning(**facts)
    k, n, m, rows = blocks(t)
    floats = 4
    assert k % 16 == 0 and 64 <= k <= 512
    assert n % MICRO_COLS == 0 and m % MICRO_ROWS == 0 and rows % MICRO_ROWS == 0
    assert rows >= t["min_row_block"] == 4 * MICRO_ROWS
    # the A and B micro-panels fill L1d (within one 16-step), unless k is clamped at 512
    assert k * (MICRO_ROWS + MICRO_COLS) * floats <= facts["l1d"]
    assert k == 512 or (k + 16) * (MICRO_ROWS + MICRO_COLS) * floats > facts["l1d"]
    # the packed B block takes at most half of L2, the packed A block a third (unless clamped)
    assert k * n * floats <= max(facts["l2"] // 2, k * MICRO_COLS * floats)
    assert k * m * floats <= max(facts["l2"] // 3, k * t["min_row_block"] * floats)
    # the packing buffers of a thread stay bounded whatever L2 is reported
    assert k * (n + m) * floats <= 11 * MIB


@pytest.mark.parametrize("bad", [
    dict(l1d=0, l2=0, l3=-1, line=0, processors=0),  # nothing reported
    dict(l1d=-1, l2=-1, l3=-1, line=-1, processors=-1),
    dict(l1d=1, l2=3, l3=7, line=48, processors=1 << 30),  # absurd sizes, a line not a power of 2
    dict(l1d=1 << 40, l2=1 << 40, l3=1 << 50, line=1 << 20, processors=-5),
], ids=["zeros", "minus-one", "tiny", "huge"])
def test_absurd_facts_fall_back_to_zen5(bad):
    t = _core.derive_tuning(**bad)
    assert t["machine"] == ZEN5
    assert set(t["source"].values()) == {"Zen 5 default"}
    assert blocks(t) == blocks(_core.derive_tuning(**ZEN5))


def test_each_fact_falls_back_on_its_own_and_no_l3_is_a_fact():
    t = _core.derive_tuning(**dict(XEON, l1d=0, l3=0))
    assert t["machine"] == dict(XEON, l1d=ZEN5["l1d"], l3=0)
    assert t["source"] == dict(l1d="Zen 5 default", l2="given", l3="given", line="given", processors="given")


def sysfs_size(level):
    """cpu0's data or unified cache of that level from sysfs, read here independently of the C++."""
    for index in sorted(pathlib.Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        if (index / "level").read_text().strip() == str(level) and \
                (index / "type").read_text().strip() in ("Data", "Unified"):
            text = (index / "size").read_text().strip()
            return int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]] if text[-1] in "KMG" else int(text)
    return None


def test_the_running_machine_is_read_and_its_blocks_derived():
    t = _core.tuning()
    facts = t["machine"]
    for name in ("l1d", "l2", "l3", "line"):
        assert t["source"][name] in ("sysconf", "sysfs", "sysfs (no L3)", "Zen 5 default")
    if t["source"]["l1d"] != "Zen 5 default" and sysfs_size(1):
        assert facts["l1d"] == sysfs_size(1)  # glibc (cpuid) and the kernel agree
    if t["source"]["l2"] != "Zen 5 default" and sysfs_size(2):
        assert facts["l2"] == sysfs_size(2)
    assert facts["processors"] == len(os.sched_getaffinity(0))
    assert blocks(t) == blocks(_core.derive_tuning(**facts))


def test_chunks_of_the_tiled_kernel_follow_the_derived_rows():
    t = _core.tuning()
    # few classes: the logits budget allows far more rows than one A block, so the block binds
    assert _core.tiled_plan(10**6, 300, 64)["row_block"] == t["max_row_block"]
    assert _core.tiled_plan(10**6, 10**6, 64)["row_block"] >= t["min_row_block"]


def test_show_config_reports_the_caches_and_blocks(capsys):
    csoftmax.show_config()
    out = capsys.readouterr().out
    t = _core.tuning()
    assert f"GEMM blocks:  k {t['block_k']}, n {t['block_n']}, m {t['block_m']}" in out
    assert f"({t['source']['l2']})" in out
