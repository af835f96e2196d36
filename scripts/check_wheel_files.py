"""Check that a csoftmax wheel holds the whole package: every file of csoftmax/ in the source tree
(modules, stubs, py.typed, the embedded sample), the files the build makes (_build_isa.py, the two
extension modules) and, in a repaired wheel, the OpenMP runtime it vendors; and no Cython source.

    python scripts/check_wheel_files.py WHEEL   (from the source tree's root)
"""

import fnmatch
import pathlib
import sys
import zipfile

# Made by the build, not in the source tree (shell-style patterns over the wheel's paths)
BUILT = ["csoftmax/_build_isa.py", "csoftmax/_core.*.so", "csoftmax/data/_batching.*.so"]
# Copied in by `auditwheel repair`, whose wheels carry a manylinux tag in their name
VENDORED = ["csoftmax.libs/libgomp-*.so*"]
# Source files the wheel must not carry (pyproject.toml: wheel.exclude), and what Python leaves behind
NOT_SHIPPED = {".pyx", ".pyc", ".so"}


def source_files(package: pathlib.Path) -> set[str]:
    """The package's files as the wheel names them (csoftmax/...)."""
    return {path.relative_to(package.parent).as_posix() for path in package.rglob("*")
            if path.is_file() and path.suffix not in NOT_SHIPPED and "__pycache__" not in path.parts}


def problems(wheel: pathlib.Path, package: pathlib.Path) -> list[str]:
    names = set(zipfile.ZipFile(wheel).namelist())
    found = [f"missing from the wheel: {name}" for name in sorted(source_files(package) - names)]
    expected = BUILT + (VENDORED if "manylinux" in wheel.name else [])
    found += [f"nothing in the wheel matches {pattern}" for pattern in expected
              if not fnmatch.filter(names, pattern)]
    found += [f"Cython source in the wheel: {name}" for name in sorted(names) if name.endswith(".pyx")]
    return found


def main() -> int:
    wheel = pathlib.Path(sys.argv[1])
    found = problems(wheel, pathlib.Path("csoftmax"))
    for problem in found:
        print(f"check_wheel_files.py: {problem}", file=sys.stderr)
    if not found:
        print(f"{wheel.name}: every file of the package is in it")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
