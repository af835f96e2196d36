"""Argument checks shared by the kernels' Python face, the models, the data iterators and the CLI.

Each check takes the value and the name to report it under, returns the value converted (a Python int
or float), and raises TypeError for the wrong kind of value or ValueError for one out of range, with a
message "name: expected ..., got ...". The CLI builds its argparse types on these same checks, so a
rule and its wording exist once.
"""

from __future__ import annotations

import math
import numbers
import operator

# The kernels take sizes and counts as int64: a larger count cannot reach them.
MAX_INT64 = 2**63 - 1


def positive_int(value, name: str | None, *, maximum: int = MAX_INT64) -> int:
    """value as an int in [1, maximum]; bool (True is not a count) and floats are refused."""
    return _int_in_range(value, name, 1, maximum, "a positive integer")


def natural_int(value, name: str | None, *, maximum: int = MAX_INT64) -> int:
    """value as an int in [0, maximum] (seeds, indices)."""
    return _int_in_range(value, name, 0, maximum, "a non-negative integer")


def positive_float(value, name: str | None) -> float:
    """value as a float, finite and > 0 (learning rates, deadlines); bool is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(_message(name, f"expected a number, got {type(value).__name__}"))
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(_message(name, f"expected a positive finite number, got {number}"))
    return number


def _int_in_range(value, name: str | None, minimum: int, maximum: int, kind: str) -> int:
    if isinstance(value, bool):
        raise TypeError(_message(name, "expected an integer, got bool"))
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(_message(name, f"expected an integer, got {type(value).__name__}")) from None
    if number < minimum:
        raise ValueError(_message(name, f"expected {kind}, got {_brief(number)}"))
    if number > maximum:
        raise ValueError(_message(name, f"expected {kind} no larger than {maximum}, got {_brief(number)}"))
    return number


def _message(name: str | None, problem: str) -> str:
    """The problem, under the argument's name (None: the caller, e.g. argparse, names it itself)."""
    return problem if name is None else f"{name}: {problem}"


def _brief(number: int) -> str:
    """The number as written, unless it is too long for a one-line message."""
    return str(number) if number.bit_length() <= 256 else f"an integer of {number.bit_length()} bits"
