"""benchmarks/bench_step_phases.py --quick runs: every case reports each thread's phases, and the half
batch beside a copy reports its partner process's too."""

import csoftmax


def test_quick_run_reports_each_threads_phases(import_benchmark):
    bench = import_benchmark("bench_step_phases")
    results = bench.run(repeats=1, quick=True)
    threads = csoftmax.build_info()["available_threads"] if csoftmax.build_info()["openmp"] else 1
    assert {rows for rows, _ in results} == {"cached", "shuffled"} and len(results) == 8
    for (rows, name), result in results.items():
        expected = 2 if name == bench.BESIDE_A_COPY else threads if name.startswith(f"{threads} threads") else 1
        assert len(result["threads"]) == expected, (rows, name)
        assert result["step"] > 0 and all(phases["blocks"] > 0 for phases in result["threads"]), (rows, name)
