"""`csoftmax train`, `csoftmax predict` and `csoftmax info`: real runs, their files, and one-line errors."""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from training_helpers import (
    EPOCH_LINE,
    assert_meets_the_issue,
    assert_png,
    assert_same_run,
)

import csoftmax
from csoftmax import EpochMetrics, SoftmaxRegression
from csoftmax.cli import main

RUN_FILES = ["confusion.png", "curves.png", "metrics.json", "model.npz", "predictions.png", "risk-coverage.png",
             "weights.png"]


pytestmark = pytest.mark.usefixtures("restore_threads")  # `csoftmax train --threads` sets the count


def check_metrics_schema(document):
    """Exactly the issue's schema: these keys, these types, nothing more."""
    assert set(document) == {"backend", "dataset", "epochs", "train_seconds"}
    assert isinstance(document["backend"], str)
    assert set(document["dataset"]) == {"source", "train", "test"}
    assert isinstance(document["dataset"]["source"], str)
    assert type(document["dataset"]["train"]) is int and type(document["dataset"]["test"]) is int
    assert type(document["train_seconds"]) is float
    for number, epoch in enumerate(document["epochs"], start=1):
        assert set(epoch) == {"epoch", "train_loss", "train_acc", "test_acc", "seconds"}
        assert epoch["epoch"] == number
        assert all(type(epoch[key]) is float for key in ("train_loss", "train_acc", "test_acc", "seconds"))
    return [EpochMetrics(**epoch) for epoch in document["epochs"]]


def test_train_on_the_real_data(tmp_path, capsys, chapter_run):
    """The README's main job: the chapter's recipe from the command line, with all its files."""
    out, metrics_path = tmp_path / "run", tmp_path / "elsewhere" / "m.json"
    assert main(["train", "--out", str(out), "--metrics", str(metrics_path), "--threads", "1"]) == 0
    stdout = capsys.readouterr().out
    printed = [tuple(map(float, match)) for match in EPOCH_LINE.findall(stdout)]
    assert [int(line[0]) for line in printed] == list(range(1, 11))

    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    document = json.loads((out / "metrics.json").read_text())
    assert json.loads(metrics_path.read_text()) == document
    epochs = check_metrics_schema(document)
    assert document["backend"] == "fused"
    assert document["dataset"]["train"] == 60000 and document["dataset"]["test"] == 10000
    assert "fashion-mnist" in document["dataset"]["source"]
    assert_meets_the_issue(epochs)
    for line, epoch in zip(printed, epochs):
        assert line[1:4] == pytest.approx((epoch.train_loss, epoch.train_acc, epoch.test_acc), abs=5e-5)
    assert document["train_seconds"] == pytest.approx(sum(e.seconds for e in epochs))

    summary = stdout[stdout.rindex("trained in"):]
    assert "60,000 train / 10,000 test images" in summary and document["dataset"]["source"] in summary
    assert f"test acc {epochs[-1].test_acc:.4f}" in summary
    for name in RUN_FILES:
        if name.endswith(".png"):
            assert_png(out / name)

    # The same recipe in a script (the session's shared run, on the default thread count) gives the same
    # run: the CLI and the thread count add nothing to the numbers.
    model = SoftmaxRegression.load(out / "model.npz")
    np.testing.assert_array_equal(model.W, chapter_run.model.W)
    assert [e.test_acc for e in chapter_run.epochs] == [e.test_acc for e in epochs]

    # csoftmax predict on the saved model reports the run's last test accuracy.
    assert main(["predict", "--model", str(out / "model.npz"), "--threshold", "0.9"]) == 0
    report = capsys.readouterr().out
    assert f"test accuracy {epochs[-1].test_acc:.4f} on 10,000 test images of Fashion-MNIST" in report
    assert report.count(" 0.") >= 10 and "per class: t-shirt" in report
    coverage = float(re.search(r"threshold 0.9: answers ([\d.]+)% of the images", report).group(1))
    assert 20 < coverage < 90


def test_numpy_backend_and_the_default_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for backend in ("fused", "numpy"):
        assert main(["train", "--sample", "--epochs", "2", "--backend", backend, "--quiet"]) == 0
        assert capsys.readouterr().out == ""
    runs = sorted((tmp_path / "csoftmax-runs").iterdir())
    assert len(runs) == 2 and [run.name.rsplit("-", 1)[-1] for run in runs] == ["fused", "numpy"]
    documents = [json.loads((run / "metrics.json").read_text()) for run in runs]
    assert [d["backend"] for d in documents] == ["fused", "numpy"]
    assert all(d["dataset"]["train"] == 6000 and "embedded sample" in d["dataset"]["source"] for d in documents)
    assert_same_run(check_metrics_schema(documents[1]), check_metrics_schema(documents[0]))
    assert main(["train", "--sample", "--epochs", "1", "--quiet"]) == 0  # a third run: a folder of its own
    assert len(list((tmp_path / "csoftmax-runs").iterdir())) == 3


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", "--sample", "--epochs", "2", "--out", str(tmp_path)]) == 0
    bars = terminal.getvalue()
    assert re.search(r"\repoch  1 +\d% \[#*\.+\]", bars) and "\repoch  1 100% [" in bars and "\repoch  2 100% [" in bars
    assert len(EPOCH_LINE.findall(capsys.readouterr().out)) == 2


def test_info_prints_the_build_report(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"csoftmax {csoftmax.__version__}") and "SIMD:" in out and "threads:" in out


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
        (["train", "--epochs", "ten"], "argument --epochs: expected an integer, got 'ten'"),
        (["train", "--lr", "-1"], "argument --lr: expected a positive finite number, got -1.0"),
        (["train", "--lr", "inf"], "argument --lr: expected a positive finite number, got inf"),
        (["train", "--backend", "torch"], "argument --backend: invalid choice: 'torch'"),
        (["train", "--seed", "-2"], "argument --seed: expected a non-negative integer, got -2"),
        # Huge integers used to pass argparse and end in a 1,400-character "internal error" line.
        (["train", "--batch-size", "9223372036854775808"],
         "argument --batch-size: expected a positive integer no larger than 9223372036854775807, got 9223372036854775808"),
        (["train", "--threads", "3000000000"], "argument --threads: expected a positive integer no larger than"),
        (["train", "--epochs", "9" * 5000], "argument --epochs: expected an integer, got '99999"),
        (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["predict"], "the following arguments are required: --model"),
    ],
)
def test_bad_flags_end_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = one_line_error(capsys)
    assert err.startswith("csoftmax") and ": error: " in err and message in err
    assert len(err) < 300, err  # short, even for a 5,000-digit number


def test_metrics_path_that_is_a_directory_fails_before_training(tmp_path, capsys):
    """`--metrics DIR` used to fail only after training, losing the run's metrics."""
    (tmp_path / "dir").mkdir()
    assert main(["train", "--sample", "--out", str(tmp_path / "run"), "--metrics", str(tmp_path / "dir")]) == 1
    err = one_line_error(capsys)
    assert f"cannot write to --metrics {tmp_path / 'dir'}: it is a directory" in err
    assert not (tmp_path / "run" / "model.npz").exists() and "epoch" not in capsys.readouterr().out


def test_a_directory_where_a_run_file_goes_fails_before_training(tmp_path, capsys):
    (tmp_path / "run" / "model.npz").mkdir(parents=True)
    assert main(["train", "--sample", "--out", str(tmp_path / "run")]) == 1
    assert f"cannot write to --out {tmp_path / 'run' / 'model.npz'}: it is a directory" in one_line_error(capsys)
    assert not (tmp_path / "run" / "curves.png").exists() and "epoch" not in capsys.readouterr().out


def test_out_path_that_is_a_fifo_fails_before_training(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["train", "--sample", "--out", str(fifo)]) == 1
    assert f"cannot write to --out {fifo}" in one_line_error(capsys)
    assert main(["train", "--sample", "--out", str(tmp_path / "run"), "--metrics", str(fifo)]) == 1
    assert f"cannot write to --metrics {fifo}: it is not a regular file" in one_line_error(capsys)
    assert not (tmp_path / "run" / "model.npz").exists()


def test_unwritable_destinations_fail_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["train", "--sample", "--out", str(blocker / "run")]) == 1
    assert f"cannot write to --out {blocker / 'run'}" in one_line_error(capsys)
    assert main(["train", "--sample", "--out", str(tmp_path / "ok"), "--metrics", str(blocker / "m.json")]) == 1
    assert "cannot write to --metrics" in one_line_error(capsys)
    assert not (tmp_path / "ok" / "model.npz").exists()
    assert main(["train", "--sample", "--data-dir", str(tmp_path)]) == 1
    assert "--sample uses the embedded sample: it takes no --data-dir" in one_line_error(capsys)


def test_unreadable_models_fail_in_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    for path, message in ((tmp_path / "missing.npz", "No such file"), (garbage, "not a readable .npz model file")):
        assert main(["predict", "--model", str(path), "--sample"]) == 1
        err = one_line_error(capsys)
        assert err.startswith("csoftmax predict: error: ") and message in err and str(path) in err
    small = tmp_path / "small.npz"
    SoftmaxRegression(5, 3).save(small)
    assert main(["predict", "--model", str(small), "--sample"]) == 1
    assert "a model of 5 inputs and 3 classes, not one for Fashion-MNIST" in one_line_error(capsys)
    assert main(["predict", "--model", str(small), "--sample", "--threshold", "2"]) == 1
    assert "--threshold must be a probability" in one_line_error(capsys)


def test_python_dash_m_train_help(tmp_path):
    # cwd: `python -m` puts the current directory first on sys.path, and the source tree would shadow
    # the installed package.
    result = subprocess.run([sys.executable, "-m", "csoftmax", "train", "--help"], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for flag in ("--epochs", "--batch-size", "--lr", "--seed", "--backend", "--threads", "--data-dir", "--sample",
                 "--out", "--metrics", "--quiet"):
        assert flag in result.stdout


# --- csoftmax train --solver lbfgs | newton-cg: csoftmax.LogisticRegression ------------------------------


def test_full_batch_solver_trains_with_progress_and_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--solver", "lbfgs", "--C", "0.5", "--max-iter", "15", "--sample", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    iterations = re.findall(r"^iteration +(\d+): objective ([0-9.]+), max \|gradient\| ([0-9.e+-]+)$", printed, re.M)
    assert [int(i) for i, _, _ in iterations] == list(range(1, 16))
    assert "stopped at max_iter=15 before converging" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["curves.png", "predictions.png", "weights.png", "confusion.png", "risk-coverage.png", "model.npz",
         "metrics.json"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["solver"] == "lbfgs" and metrics["C"] == 0.5 and metrics["iterations"] == 15
    assert not metrics["converged"]
    curve = metrics["objective_curve"]
    assert len(curve) == 16 and curve[-1] == metrics["objective"] and curve[-1] < curve[0]
    assert [float(value) for _, value, _ in iterations] == pytest.approx(curve[1:], rel=1e-9)
    # The saved model is a SoftmaxRegression of the fitted weights: `csoftmax predict` reads it and
    # finds, through its own path, the test accuracy the run reported.
    model = SoftmaxRegression.load(out / "model.npz")
    assert model.W.shape == (784, 10)
    assert main(["predict", "--model", str(out / "model.npz"), "--sample"]) == 0
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    assert accuracy == pytest.approx(metrics["test_acc"], abs=1e-4)


def test_full_batch_objective_is_scikit_learns(tmp_path):
    """The run's final objective is scikit-learn's objective at the saved coefficients, recomputed here."""
    from scipy.special import logsumexp

    from csoftmax.data import load_fashion_mnist

    out = tmp_path / "run"
    assert main(["train", "--solver", "newton-cg", "--C", "1", "--max-iter", "4", "--sample", "--quiet",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    model = SoftmaxRegression.load(out / "model.npz")  # float32 copies of the coefficients
    data = load_fashion_mnist(sample=True)
    X = data.train_images.astype(np.float64) / 255
    Z = X @ model.W.astype(np.float64) + model.b.astype(np.float64)
    loss = np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(Z)), data.train_labels])
    objective = loss + np.sum(model.W.astype(np.float64) ** 2) / (2 * 1.0 * len(X))
    assert objective == pytest.approx(metrics["objective"], rel=1e-5)  # float32 rounding of the saved model


@pytest.mark.parametrize("argv, message", [
    (["train", "--solver", "lbfgs", "--epochs", "3"], "--epochs: not a setting of --solver lbfgs"),
    (["train", "--solver", "newton-cg", "--lr", "0.1", "--backend", "numpy"],
     "--lr, --backend: not a setting of --solver newton-cg"),
    (["train", "--C", "2"], "--C: not a setting of --solver sgd"),
])
def test_the_other_solvers_flags_are_refused_before_training(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "run")]) != 0
    assert message in one_line_error(capsys)


@pytest.mark.parametrize("argv, message", [
    (["train", "--solver", "lbfgs", "--C", "0"], "argument --C: expected a positive finite number, got 0.0"),
    (["train", "--solver", "lbfgs", "--max-iter", "0"], "argument --max-iter: expected a positive integer, got 0"),
    (["train", "--solver", "sag"], "argument --solver: invalid choice: 'sag'"),
])
def test_bad_full_batch_flags_end_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in one_line_error(capsys)
