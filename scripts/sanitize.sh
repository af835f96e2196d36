#!/usr/bin/env bash
# Build csoftmax with AddressSanitizer + UBSan (CMake option CSOFTMAX_SANITIZE) and run the test suite
# under it. Any finding aborts the process it happens in; the script then prints every report and
# exits non-zero, even when the finding was in a subprocess whose failure a test expected.
#
#   bash scripts/sanitize.sh [pytest arguments]     (default: the whole suite)
#
# Run it in an activated environment that has the build and test dependencies (pip install ".[test]"
# and the [build-system] requirements). The sanitized build goes into build/sanitize/site, which the
# tests import ahead of whatever is installed: the environment's own install is left as it was.
# Needs GCC's sanitizer runtimes (Debian: libasan8, libubsan1; g++ pulls them in).
set -euo pipefail
cd "$(dirname "$0")/.."

libasan=$(g++ -print-file-name=libasan.so)
libubsan=$(g++ -print-file-name=libubsan.so)
for runtime in "$libasan" "$libubsan"; do
  if [[ ! -e $runtime ]]; then
    echo "sanitize.sh: g++ has no $(basename "$runtime") (install libasan8 and libubsan1)" >&2
    exit 1
  fi
done

site=build/sanitize/site
reports=build/sanitize/reports
rm -rf "$site" "$reports"
mkdir -p "$reports"
pip install --no-build-isolation --no-deps --target "$site" -Cbuild-dir=build/sanitize/cmake \
  -Ccmake.define.CSOFTMAX_SANITIZE=ON .

# The interpreter is not instrumented, so libasan must be loaded first (LD_PRELOAD), and libstdc++
# with it: else ASan's C++ exception interceptor finds no __cxa_throw to forward to and aborts at the
# first exception any extension (matplotlib's, ours) throws. Leaks are not checked: CPython keeps its
# own allocations alive until exit. log_path sends each process's report to a file of its own, so
# that a finding in a subprocess cannot go unseen.
reports_abs=$(realpath "$reports")
export LD_PRELOAD="$libasan $(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$reports_abs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports_abs/ubsan"
export PYTHONPATH="$(realpath "$site")${PYTHONPATH:+:$PYTHONPATH}"

# (from inside $site: from the source tree, python would import the unbuilt csoftmax/ there)
(cd "$site" && python -c '
import csoftmax
flags = csoftmax.build_info()["cxx_flags"]
assert "-fsanitize=address,undefined" in flags, f"the tests would not run the sanitized build: {flags}"
print("sanitized build:", csoftmax.__file__, flags)
')

status=0
pytest -p no:cacheprovider "$@" || status=$?

if compgen -G "$reports_abs/*" > /dev/null; then
  echo "sanitize.sh: sanitizer findings:" >&2
  for report in "$reports_abs"/*; do
    echo "=== $report" >&2
    cat "$report" >&2
  done
  exit 1
fi
if (( status != 0 )); then
  echo "sanitize.sh: the tests failed under the sanitizers (pytest exit $status), no sanitizer report" >&2
  exit "$status"
fi
echo "sanitize.sh: no sanitizer findings"
