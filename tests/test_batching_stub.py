"""csoftmax/data/_batching.pyi: installed beside the compiled module and naming exactly its functions
and their parameters, so type checkers and editors see what the module offers."""

import ast
import inspect
from pathlib import Path

from csoftmax.data import _batching


def _stub():
    path = Path(_batching.__file__).with_name("_batching.pyi")
    assert path.is_file(), f"the stub is not installed beside {_batching.__file__}"
    return {node.name: [arg.arg for arg in node.args.args]
            for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


def test_the_stub_names_every_function_of_the_module():
    public = {name for name, value in vars(_batching).items() if callable(value) and not name.startswith("_")}
    assert set(_stub()) == public


def test_the_stub_has_the_modules_parameters():
    for name, parameters in _stub().items():
        assert list(inspect.signature(getattr(_batching, name)).parameters) == parameters, name
