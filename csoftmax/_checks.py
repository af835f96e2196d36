"""Argument checks shared across the package."""

from __future__ import annotations

import operator


def positive_int(value, name: str) -> int:
    """value as an int >= 1; bool is refused (True is not a count), floats too."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}") from None
    if number < 1:
        raise ValueError(f"{name}: expected a positive integer, got {number}")
    return number
