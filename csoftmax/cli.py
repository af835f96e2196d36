"""The `csoftmax` command (also `python -m csoftmax`).

Each subcommand is a `Command` in COMMANDS: a function adding its arguments to its parser and a
function running it, which returns the exit status. To add one, write those two functions and add a
line to COMMANDS. Errors a user can cause (bad data, a missing file, an unreachable mirror) end in
one line on stderr and exit status 1, never a traceback; argparse reports bad flags with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .data import DataNotFoundError, FashionMNIST, FashionMNISTError, load_fashion_mnist

DEBUG_ENV = "CSOFTMAX_DEBUG"  # set to show the traceback of an unexpected error


class CommandError(Exception):
    """A failure to report as a one-line message (exit status 1)."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- csoftmax data ------------------------------------------------------------------------------------


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="use (and with --download, fill) this directory only")
    parser.add_argument(
        "--download", action="store_true", help="download missing files from the mirrors ($CSOFTMAX_MIRRORS)"
    )
    parser.add_argument("--sample", action="store_true", help="report on the embedded sample instead")


def run_data(args: argparse.Namespace) -> int:
    if args.sample and (args.data_dir or args.download):
        raise CommandError("--sample reports on the embedded sample: it takes neither --data-dir nor --download")
    try:
        dataset = load_fashion_mnist(args.data_dir, sample=bool(args.sample), download=args.download)
    except DataNotFoundError as exc:
        fetch = "" if args.download else "`csoftmax data --download` to fetch it, or "
        raise CommandError(
            f"{exc}. Run {fetch}`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or name a directory "
            "holding the four files with --data-dir."
        ) from exc
    print(describe_dataset(dataset))
    return 0


def describe_dataset(dataset: FashionMNIST) -> str:
    """A few lines: where the data is, each file's sizes and verification, and the counts."""
    kind = "embedded sample" if dataset.is_sample else "full dataset"
    lines = [f"Fashion-MNIST, {kind}", f"  source: {dataset.source}"]
    width = max(len(file.path.name) for file in dataset.files)
    for file in dataset.files:
        lines.append(
            f"  {file.path.name:<{width}}  {file.stored_bytes:>12,} bytes  {file.content_bytes:>12,} decompressed  "
            f"SHA-256 verified"
        )
    lines.append(f"  train: {_count_line(dataset.train_labels)}")
    lines.append(f"  test:  {_count_line(dataset.test_labels)}")
    return "\n".join(lines)


def _count_line(labels) -> str:
    counts = [int((labels == label).sum()) for label in range(10)]
    per_class = f"{counts[0]:,} per class" if len(set(counts)) == 1 else "per class " + " ".join(map(str, counts))
    return f"{len(labels):>6,} images, {per_class}"


# --- the command table and the entry point -------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command("data", "find, fetch and verify Fashion-MNIST; say where it is", add_data_arguments, run_data),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csoftmax", description="Softmax regression from scratch, with a fused C++ kernel."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except (CommandError, FashionMNISTError, OSError, ValueError) as exc:
        _report(f"csoftmax {args.command}: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _report(f"csoftmax {args.command}: interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, with the way to see the traceback
        if os.environ.get(DEBUG_ENV):
            raise
        name = type(exc).__name__
        _report(f"csoftmax {args.command}: internal error: {name}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        return 1


def _report(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr)  # always one line, whatever the exception held
