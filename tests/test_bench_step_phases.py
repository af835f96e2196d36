"""benchmarks/bench_step_phases.py --quick runs: every case reports each thread's phases."""

import csoftmax


def test_quick_run_reports_each_threads_phases(import_benchmark):
    bench = import_benchmark("bench_step_phases")
    results = bench.run(repeats=1, quick=True)
    threads = csoftmax.build_info()["available_threads"] if csoftmax.build_info()["openmp"] else 1
    assert {rows for rows, _ in results} == {"cached", "shuffled"} and len(results) == 6
    for (rows, name), result in results.items():
        expected = threads if name.startswith(f"{threads} threads") else 1
        assert len(result["threads"]) == expected, (rows, name)
        assert result["step"] > 0 and result["threads"][0]["blocks"] > 0
