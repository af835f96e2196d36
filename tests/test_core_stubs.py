"""csoftmax/_core.pyi describes the compiled module as built: the same functions, the same parameter
names, the same keyword-only split; the stub and py.typed are installed with the package."""

import ast
import inspect
import pathlib
import re

import pytest

import csoftmax
from csoftmax import _core

PACKAGE = pathlib.Path(csoftmax.__file__).parent
STUB = ast.parse((PACKAGE / "_core.pyi").read_text())
STUB_FUNCTIONS = {node.name: node for node in STUB.body if isinstance(node, ast.FunctionDef)}
CORE_FUNCTIONS = sorted(name for name, value in vars(_core).items()
                        if callable(value) and not name.startswith("_") and not inspect.isclass(value))


def test_stub_and_marker_are_installed():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_core.pyi").is_file()


def test_stub_lists_every_function_of_the_module():
    assert sorted(STUB_FUNCTIONS) == CORE_FUNCTIONS


def core_signature(name):
    """(positional names, keyword-only names) from the signature pybind11 writes into the docstring."""
    first_line = getattr(_core, name).__doc__.splitlines()[0]
    inside = first_line[first_line.index("(") + 1:first_line.rindex(") ->")]
    positional, keyword, seen_star = [], [], False
    for part in re.split(r",\s*(?![^\[]*\])", inside):
        part = part.strip()
        if not part:
            continue
        if part == "*":
            seen_star = True
            continue
        (keyword if seen_star else positional).append(part.split(":")[0].strip())
    return positional, keyword


@pytest.mark.parametrize("name", CORE_FUNCTIONS)
def test_stub_signature_matches_the_binding(name):
    args = STUB_FUNCTIONS[name].args
    assert ([a.arg for a in args.args], [a.arg for a in args.kwonlyargs]) == core_signature(name)
