"""csoftmax._validation: the one set of argument checks behind ops, models, data iterators and the CLI."""

import argparse

import numpy as np
import pytest

from csoftmax import _validation
from csoftmax._core import max_threads
from csoftmax._validation import MAX_INT64, natural_int, positive_float, positive_int

MAX_THREADS = max_threads()
from csoftmax.cli import build_parser


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(255), MAX_INT64])
def test_positive_int_accepts_counts(value):
    assert positive_int(value, "n") == int(value) and type(positive_int(value, "n")) is int


@pytest.mark.parametrize(
    "value, error, message",
    [
        (0, ValueError, "n: expected a positive integer, got 0"),
        (-3, ValueError, "n: expected a positive integer, got -3"),
        (MAX_INT64 + 1, ValueError, f"n: expected a positive integer no larger than {MAX_INT64}, got {MAX_INT64 + 1}"),
        (True, TypeError, "n: expected an integer, got bool"),
        (2.0, TypeError, "n: expected an integer, got float"),
        ("3", TypeError, "n: expected an integer, got str"),
    ],
)
def test_positive_int_refuses(value, error, message):
    with pytest.raises(error) as info:
        positive_int(value, "n")
    assert str(info.value) == message


def test_natural_int_and_its_maximum():
    assert natural_int(0, "seed") == 0
    with pytest.raises(ValueError, match="^seed: expected a non-negative integer, got -1$"):
        natural_int(-1, "seed")
    assert positive_int(MAX_THREADS, "threads", maximum=MAX_THREADS) == MAX_THREADS
    with pytest.raises(ValueError, match=f"^threads: expected a positive integer no larger than {MAX_THREADS}, got"):
        positive_int(MAX_THREADS + 1, "threads", maximum=MAX_THREADS)


@pytest.mark.parametrize("value", [0.1, 1, np.float32(2.5), 1e300])
def test_positive_float_accepts(value):
    assert positive_float(value, "lr") == float(value) and type(positive_float(value, "lr")) is float


@pytest.mark.parametrize(
    "value, error, message",
    [
        (0.0, ValueError, "lr: expected a positive finite number, got 0.0"),
        (-1, ValueError, "lr: expected a positive finite number, got -1.0"),
        (float("inf"), ValueError, "lr: expected a positive finite number, got inf"),
        (float("nan"), ValueError, "lr: expected a positive finite number, got nan"),
        (True, TypeError, "lr: expected a number, got bool"),
        ("0.1", TypeError, "lr: expected a number, got str"),
    ],
)
def test_positive_float_refuses(value, error, message):
    with pytest.raises(error) as info:
        positive_float(value, "lr")
    assert str(info.value) == message


def _train_option(flag):
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    return next(action for action in train._actions if flag in action.option_strings)


@pytest.mark.parametrize(
    "flag, text, check, limits",
    [
        ("--epochs", "0", positive_int, {}),
        ("--batch-size", "9223372036854775808", positive_int, {}),
        ("--threads", "3000000000", positive_int, {"maximum": MAX_THREADS}),
        ("--seed", "-2", natural_int, {}),
        ("--lr", "-1", positive_float, {}),
        ("--lr", "nan", positive_float, {}),
    ],
)
def test_the_command_line_types_say_what_the_checks_say(flag, text, check, limits):
    """One rule, one message: the CLI's refusal is the check's own words, without the Python name."""
    convert = _train_option(flag).type
    number = float(text) if check is positive_float else int(text)
    with pytest.raises(ValueError) as by_check:
        check(number, "x", **limits)
    with pytest.raises(argparse.ArgumentTypeError) as by_cli:
        convert(text)
    assert str(by_check.value) == "x: " + str(by_cli.value)


def test_the_old_module_is_gone():
    with pytest.raises(ImportError):
        from csoftmax import _checks  # noqa: F401
    assert not hasattr(_validation, "argparse")  # argparse stays the CLI's business
