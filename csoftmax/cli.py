"""The `csoftmax` command (also `python -m csoftmax`).

Each subcommand is a `Command` in COMMANDS: a function adding its arguments to its parser and a
function running it, which returns the exit status. To add one, write those two functions and add a
line to COMMANDS. Errors a user can cause (bad data, a missing file, an unreachable mirror) end in
one line on stderr and exit status 1, never a traceback; argparse reports bad flags with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._progress import ProgressBar
from . import _core
from ._validation import natural_int, positive_float, positive_int
from .config import get_num_threads, set_num_threads, show_config
from .data import (
    FASHION_MNIST_LABELS,
    DataNotFoundError,
    FashionMNIST,
    PIXEL_SCALE,
    FashionMNISTError,
    load_data_fashion_mnist,
    load_fashion_mnist,
)
from .models.metrics import EpochMetrics, confusion_matrix, risk_coverage
from .models.softmax_regression import BACKENDS, SoftmaxRegression
from .models.recipe import train_recipe

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
    counts = np.bincount(labels, minlength=len(FASHION_MNIST_LABELS)).tolist()
    per_class = f"{counts[0]:,} per class" if len(set(counts)) == 1 else "per class " + " ".join(map(str, counts))
    return f"{len(labels):>6,} images, {per_class}"


# --- csoftmax train -----------------------------------------------------------------------------------

RUNS_DIR = "csoftmax-runs"
CURVES, PREDICTIONS, WEIGHTS, CONFUSION, RISK_COVERAGE = (
    "curves.png", "predictions.png", "weights.png", "confusion.png", "risk-coverage.png",
)  # fmt: skip
MODEL, METRICS = "model.npz", "metrics.json"
RUN_FILE_NAMES = (CURVES, PREDICTIONS, WEIGHTS, CONFUSION, RISK_COVERAGE, MODEL, METRICS)


def _argument_type(check: Callable, parse: Callable[[str], object], kind: str, **limits) -> Callable[[str], object]:
    """An argparse `type=` made of a check of csoftmax._validation: the text is parsed (int or float), then
    checked, so the flag obeys the rule the Python API does and says so in the same words
    ("argument --epochs: expected a positive integer, got 0")."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:  # not a number, or too many digits for int()
            shown = text if len(text) <= 40 else text[:20] + "..."
            raise argparse.ArgumentTypeError(f"expected {kind}, got {shown!r}") from None
        try:
            return check(value, None, **limits)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


_count = _argument_type(positive_int, int, "an integer")
_seed = _argument_type(natural_int, int, "an integer")
# The same bound as set_num_threads: a few threads per processor, never an absurd count.
_thread_count = _argument_type(positive_int, int, "an integer", maximum=_core.max_threads())
_positive_number = _argument_type(positive_float, float, "a number")


def add_data_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="read Fashion-MNIST from this directory only")
    parser.add_argument("--sample", action="store_true", help="use the embedded sample (6,000 / 1,000 images)")


# Each solver's own flags, with their defaults: given with the other solver, a flag is an error.
SGD_DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 0.1, "seed": 0, "backend": "fused"}
FULL_BATCH_DEFAULTS = {"C": 1.0, "tol": 1e-4, "max_iter": 1000}
SOLVERS = ("sgd", "lbfgs", "lbfgs-whitened", "newton-cg")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", choices=SOLVERS, default="sgd",
                        help="sgd: the chapter's minibatch SGD (default); lbfgs, lbfgs-whitened, newton-cg: "
                             "csoftmax.LogisticRegression, scikit-learn's objective fitted to convergence")
    sgd = parser.add_argument_group("--solver sgd (the chapter's recipe)")
    sgd.add_argument("--epochs", type=_count, help="passes over the training set (10)")
    sgd.add_argument("--batch-size", type=_count, help="examples per minibatch (256)")
    sgd.add_argument("--lr", type=_positive_number, help="learning rate of SGD (0.1)")
    sgd.add_argument("--seed", type=_seed, help="seeds the initial weights and the shuffles (0)")
    sgd.add_argument("--backend", choices=BACKENDS,
                     help="fused: the C++ kernel; numpy: the same recipe through csoftmax.reference (fused)")
    full = parser.add_argument_group(
        "--solver lbfgs / lbfgs-whitened / newton-cg (needs scikit-learn and SciPy: csoftmax[sklearn])")
    full.add_argument("--C", type=_positive_number, help="inverse regularization strength, as scikit-learn's (1.0)")
    full.add_argument("--tol", type=_positive_number, help="stopping tolerance, as scikit-learn's (1e-4)")
    full.add_argument("--max-iter", type=_count, help="iterations at most (1000)")
    parser.add_argument("--threads", type=_thread_count, metavar="N",
                        help="threads of csoftmax's kernels (default: all cores; NumPy's BLAS is not affected)")
    add_data_source_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help=f"write the run's files here (default: a new folder in ./{RUNS_DIR}/)")
    parser.add_argument("--metrics", metavar="PATH", help="also write the metrics (as in metrics.json) to PATH")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _solver_settings(args: argparse.Namespace) -> None:
    """Fill in the chosen solver's defaults; refuse the other solver's flags rather than ignore them."""
    own, other = (SGD_DEFAULTS, FULL_BATCH_DEFAULTS) if args.solver == "sgd" else (FULL_BATCH_DEFAULTS, SGD_DEFAULTS)
    given = [name for name in other if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise CommandError(f"{flags}: not a setting of --solver {args.solver}")
    for name, default in own.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def _data_source(args: argparse.Namespace) -> dict:
    if args.sample and args.data_dir:
        raise CommandError("--sample uses the embedded sample: it takes no --data-dir")
    return {"data_dir": args.data_dir, "sample": True if args.sample else None}


def _writable_dir(path: Path, flag: str) -> Path:
    """Create `path` if needed and check that files can be written in it, before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise CommandError(f"cannot write to {flag} {path}: {exc.strerror or exc}") from exc
    return path


def _writable_file(path: Path, flag: str) -> Path:
    """Check, before any work is done, that a file can be written at `path`: nothing but a regular file
    is there, and its folder can be written (and is created if needed)."""
    if path.is_dir():
        raise CommandError(f"cannot write to {flag} {path}: it is a directory")
    if path.exists() and not path.is_file():  # a FIFO would block the write, a device would take it
        raise CommandError(f"cannot write to {flag} {path}: it is not a regular file")
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandError(f"cannot write to {flag} {path}: permission denied")
    _writable_dir(path.parent, flag)
    return path


def _new_run_dir(backend: str) -> Path:
    """A folder of its own for this run: csoftmax-runs/<date>-<time>-<backend>[-n]."""
    stem = Path(RUNS_DIR) / f"{time.strftime('%Y%m%d-%H%M%S')}-{backend}"
    for attempt in range(1, 1000):
        path = stem if attempt == 1 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            path.mkdir(parents=True)
            return _writable_dir(path, "the run folder")
        except FileExistsError:
            continue
        except OSError as exc:
            raise CommandError(f"cannot create a run folder in ./{RUNS_DIR}: {exc.strerror or exc} (use --out DIR)")
    raise CommandError(f"too many runs named {stem} (use --out DIR)")


class _EpochProgress:
    """The trainer's progress callback: `epoch  3  50% [###############...............]`."""

    def __init__(self, stream):
        self.bar = ProgressBar(stream, width=30)

    def __call__(self, epoch: int, done: int, total: int) -> None:
        self.bar.update(f"epoch {epoch:>2}", done, total)


def run_train(args: argparse.Namespace) -> int:
    _solver_settings(args)
    source = _data_source(args)
    out = _writable_dir(Path(args.out), "--out") if args.out else \
        _new_run_dir(args.backend if args.solver == "sgd" else args.solver)
    for name in RUN_FILE_NAMES:
        _writable_file(out / name, "--out")
    metrics_path = _writable_file(Path(args.metrics), "--metrics") if args.metrics else None
    if args.threads:
        set_num_threads(args.threads)
    say = (lambda *lines: None) if args.quiet else (lambda *lines: print(*lines, sep="\n", flush=True))
    if args.solver != "sgd":
        return run_train_full_batch(args, source, out, metrics_path, say)
    progress = _EpochProgress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None

    from .d2l.plot import training_animator  # matplotlib only for the commands that draw

    animator = training_animator(args.epochs, path=out / CURVES)

    def on_epoch(metrics: EpochMetrics) -> None:
        if progress is not None:
            progress.bar.clear()
        say(str(metrics))
        animator.add_epoch(metrics)

    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, seed=args.seed, **source)
    threads = f", {get_num_threads()} threads" if args.backend == "fused" else ""
    say(f"softmax regression on {_dataset_line(train_iter, test_iter)}",
        f"{args.epochs} epochs, batch size {args.batch_size}, lr {args.lr:g}, seed {args.seed}, "
        f"{args.backend} backend{threads}")
    result = train_recipe(train_iter, test_iter, args.epochs, args.lr, args.seed, backend=args.backend,
                          callback=on_epoch, progress=progress)
    written = [out / CURVES, *write_run_files(result.model, result.test_iter, out)]
    written.append(write_metrics(result.metrics_document(), out, metrics_path))
    last = result.epochs[-1]
    say(f"trained in {result.train_seconds:.3f} s ({args.backend} backend): train loss {last.train_loss:.4f}, "
        f"train acc {last.train_acc:.4f}, test acc {last.test_acc:.4f}",
        f"data: {_dataset_line(train_iter, test_iter)}",
        f"wrote {out}{os.sep}: {' '.join(path.name for path in written)}"
        + (f"; metrics also in {metrics_path}" if metrics_path is not None else ""))
    return 0


def _data_name(is_sample: bool) -> str:
    return "the embedded sample of Fashion-MNIST" if is_sample else "Fashion-MNIST"


def _dataset_line(train_iter, test_iter) -> str:
    return (f"{_data_name(train_iter.is_sample)}, {train_iter.num_examples:,} train / {test_iter.num_examples:,} "
            f"test images, from {train_iter.source}")


def run_train_full_batch(args: argparse.Namespace, source: dict, out: Path, metrics_path: Path | None, say) -> int:
    """`csoftmax train --solver lbfgs|lbfgs-whitened|newton-cg`: csoftmax.LogisticRegression on pixels / 255, to
    convergence, printing the objective and the largest gradient entry after every iteration."""
    try:
        from .models.logistic_regression import LogisticRegression
    except ImportError as exc:
        raise CommandError(f"--solver {args.solver} needs scikit-learn and SciPy: pip install \"csoftmax[sklearn]\" "
                           f"({exc})") from exc
    from sklearn.exceptions import ConvergenceWarning

    from .d2l.plot import plot_objective_curve

    train_iter, test_iter = load_data_fashion_mnist(256, **source)
    X = train_iter.images.astype(np.float32) * np.float32(PIXEL_SCALE)  # pixels / 255, as scikit-learn users have them
    say(f"logistic regression on {_dataset_line(train_iter, test_iter)}",
        f"solver {args.solver}, C {args.C:g}, tol {args.tol:g}, max_iter {args.max_iter}, {get_num_threads()} threads")
    estimator = LogisticRegression(C=args.C, tol=args.tol, max_iter=args.max_iter, solver=args.solver,
                                   verbose=0 if args.quiet else 1)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X, train_iter.labels)
    seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    model = SoftmaxRegression.from_weights(estimator.coef_.T, estimator.intercept_)
    train_acc = float((model.predict(train_iter.images) == train_iter.labels).mean())
    test_acc = float((model.predict(test_iter.images) == test_iter.labels).mean())
    written = [plot_objective_curve(estimator.objective_curve_, path=out / CURVES), *write_run_files(model, test_iter, out)]
    document = {
        "solver": args.solver, "C": args.C, "tol": args.tol, "max_iter": args.max_iter,
        "dataset": {"source": train_iter.source, "train": int(train_iter.num_examples),
                    "test": int(test_iter.num_examples)},
        "iterations": int(estimator.n_iter_[0]), "converged": converged,
        "objective": float(estimator.objective_curve_[-1]), "objective_curve": estimator.objective_curve_.tolist(),
        "train_acc": train_acc, "test_acc": test_acc, "fit_seconds": seconds,
    }
    written.append(write_metrics(document, out, metrics_path))
    stopped = "converged" if converged else f"stopped at max_iter={args.max_iter} before converging"
    say(f"fitted in {seconds:.2f} s, {estimator.n_iter_[0]} iterations ({stopped}): objective "
        f"{document['objective']:.6f}, train acc {train_acc:.4f}, test acc {test_acc:.4f}",
        f"wrote {out}{os.sep}: {' '.join(path.name for path in written)}"
        + (f"; metrics also in {metrics_path}" if metrics_path is not None else ""))
    return 0


def write_metrics(document: dict, out: Path, metrics_path: Path | None) -> Path:
    """metrics.json in the run folder, and the same at --metrics PATH when given."""
    text = json.dumps(document, indent=2) + "\n"
    (out / METRICS).write_text(text, encoding="utf-8")
    if metrics_path is not None:
        metrics_path.write_text(text, encoding="utf-8")
    return out / METRICS


def write_run_files(model: SoftmaxRegression, test_iter, out: Path) -> list[Path]:
    """The trained model and its figures: predictions, weight templates, confusion matrix, risk–coverage."""
    from .d2l.plot import plot_confusion_matrix, plot_risk_coverage, plot_weight_templates, predict_ch3

    model.save(out / MODEL)
    probabilities = model.predict_proba(test_iter.images)
    predict_ch3(model, test_iter, n=10, path=out / PREDICTIONS)
    plot_weight_templates(model.W, path=out / WEIGHTS)
    plot_confusion_matrix(test_iter.labels, probabilities.argmax(axis=1), path=out / CONFUSION)
    plot_risk_coverage(probabilities, test_iter.labels, path=out / RISK_COVERAGE)
    return [out / name for name in (PREDICTIONS, WEIGHTS, CONFUSION, RISK_COVERAGE, MODEL)]


# --- csoftmax predict ---------------------------------------------------------------------------------


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="PATH", required=True, help="a model.npz written by `csoftmax train`")
    add_data_source_arguments(parser)
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="abstain where the top probability is below P (exercise 4): report coverage")


def run_predict(args: argparse.Namespace) -> int:
    source = _data_source(args)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise CommandError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    model = SoftmaxRegression.load(args.model)
    dataset = load_fashion_mnist(source["data_dir"], sample=source["sample"])
    images, labels = dataset.test_images, dataset.test_labels
    if model.num_inputs != images.shape[1] or model.num_outputs != len(FASHION_MNIST_LABELS):
        raise CommandError(f"{args.model}: a model of {model.num_inputs} inputs and {model.num_outputs} classes, "
                           f"not one for Fashion-MNIST ({images.shape[1]} inputs, {len(FASHION_MNIST_LABELS)} classes)")
    predicted = model.predict(images)
    print(f"{args.model}: test accuracy {float((predicted == labels).mean()):.4f} on {len(labels):,} test images "
          f"of {_data_name(dataset.is_sample)}, from {dataset.source}")
    counts = confusion_matrix(labels, predicted, len(FASHION_MNIST_LABELS))
    recall = counts.diagonal() / counts.sum(axis=1)
    print("per class: " + ", ".join(f"{name} {r:.3f}" for name, r in zip(FASHION_MNIST_LABELS, recall, strict=True)))
    if args.threshold is not None:
        coverage, accuracy = risk_coverage(model.predict_proba(images), labels).at_threshold(args.threshold)
        right = f"{accuracy:.1%}" if coverage else "none"
        print(f"threshold {args.threshold:g}: answers {coverage:.1%} of the images, {right} of them right")
    return 0


# --- csoftmax info ------------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:
    show_config()
    return 0


# --- the command table and the entry point -------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command("data", "find, fetch and verify Fashion-MNIST; say where it is", add_data_arguments, run_data),
    Command("train", "train the chapter's softmax regression; write its model, metrics and figures",
            add_train_arguments, run_train),
    Command("predict", "evaluate a saved model on the Fashion-MNIST test set", add_predict_arguments, run_predict),
    Command("info", "what was compiled in, what the CPU offers, the threads used", lambda parser: None, run_info),
)


class OneLineErrorParser(argparse.ArgumentParser):
    """Reports a bad flag in one line (status 2) instead of the usage followed by the error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
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
