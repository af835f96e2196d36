"""scripts/check_wheel_files.py, the wheel's file-list check of scripts/build_wheel.sh, finds what a
wheel lacks and what it must not carry, on wheels made here from a small package tree."""

import importlib.util
import pathlib
import zipfile

SCRIPT = pathlib.Path(__file__).parent.parent / "scripts" / "check_wheel_files.py"
spec = importlib.util.spec_from_file_location("check_wheel_files", SCRIPT)
check_wheel_files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_wheel_files)

SOURCE = ["csoftmax/__init__.py", "csoftmax/_core.pyi", "csoftmax/py.typed", "csoftmax/data/sample/x.json"]
BUILT = ["csoftmax/_build_isa.py", "csoftmax/_core.cpython-311-x86_64-linux-gnu.so",
         "csoftmax/data/_batching.cpython-311-x86_64-linux-gnu.so"]
VENDORED = ["csoftmax.libs/libgomp-f9a9ad78.so.1.0.0"]
MANYLINUX = "csoftmax-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl"


def problems(tmp_path, wheel_name, names):
    package = tmp_path / "src"
    for name in SOURCE + ["csoftmax/data/_batching.pyx", "csoftmax/__pycache__/ops.cpython-311.pyc"]:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("")
    with zipfile.ZipFile(tmp_path / wheel_name, "w") as wheel:
        for name in names:
            wheel.writestr(name, "")
    return check_wheel_files.problems(tmp_path / wheel_name, package / "csoftmax")


def test_a_complete_wheel_passes(tmp_path):
    assert problems(tmp_path, MANYLINUX, SOURCE + BUILT + VENDORED) == []


def test_each_missing_file_is_named(tmp_path):
    assert problems(tmp_path, MANYLINUX, SOURCE[:1] + BUILT[1:]) == [
        "missing from the wheel: csoftmax/_core.pyi",
        "missing from the wheel: csoftmax/data/sample/x.json",
        "missing from the wheel: csoftmax/py.typed",
        "nothing in the wheel matches csoftmax/_build_isa.py",
        "nothing in the wheel matches csoftmax.libs/libgomp-*.so*",
    ]


def test_the_runtime_is_required_of_repaired_wheels_only(tmp_path):
    assert problems(tmp_path, MANYLINUX.replace("manylinux_2_34", "linux"), SOURCE + BUILT) == []


def test_cython_source_is_refused(tmp_path):
    assert problems(tmp_path, MANYLINUX, SOURCE + BUILT + VENDORED + ["csoftmax/data/_batching.pyx"]) == [
        "Cython source in the wheel: csoftmax/data/_batching.pyx"]
