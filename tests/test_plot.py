"""Figures: written as valid, non-empty PNG/SVG files outside Jupyter (never shown in a window, never silently
dropped), displayed and redrawn in place inside Jupyter. Pixels are not tested."""

import os
import subprocess
import sys

import numpy as np
import pytest
from training_helpers import assert_png, assert_svg, tiny_iterators

from csoftmax import EpochMetrics, SoftmaxRegression
from csoftmax.d2l import plot

@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(plot.FIGURE_DIR_ENV, raising=False)
    return tmp_path


def epochs(n):
    return [EpochMetrics(e, 1.0 / e, 0.7 + 0.01 * e, 0.68 + 0.01 * e, 0.1) for e in range(1, n + 1)]


def test_outside_jupyter_the_animator_writes_its_file_after_every_point(in_tmp, capsys):
    assert not plot.in_notebook()
    animator = plot.training_animator(3)
    path = in_tmp / "csoftmax-figures" / "training-curves.png"
    assert f"the plot is written to {os.path.relpath(path, in_tmp)}" in capsys.readouterr().err
    sizes = []
    for metrics in epochs(3):
        animator.add_epoch(metrics)
        assert_png(path)
        sizes.append(path.stat().st_size)
    assert len(set(sizes)) == 3  # redrawn each time
    assert animator.Y == [[m.train_loss for m in epochs(3)], [m.train_acc for m in epochs(3)],
                          [m.test_acc for m in epochs(3)]]
    assert capsys.readouterr().err == ""  # said once
    assert sorted(p.name for p in path.parent.iterdir()) == ["training-curves.png"]  # no partial files left


def test_a_single_epoch_plots_without_complaint(in_tmp):
    animator = plot.training_animator(1, path=in_tmp / "one.png")
    animator.add_epoch(epochs(1)[0])
    assert_png(in_tmp / "one.png")


def test_animator_svg_and_explicit_paths(in_tmp, capsys):
    svg = plot.Animator(legend=["a", "b"], fmt="svg")
    svg.add(1, [0.5, 0.6])
    svg.add([2, 2], [0.4, None])  # None skips a point, as in the book
    assert_svg(in_tmp / "csoftmax-figures" / "animator.svg")
    assert svg.X == [[1, 2], [1]]
    capsys.readouterr()
    chosen = plot.Animator(path=in_tmp / "deep" / "curves.svg")
    chosen.add(1, 0.5)
    assert_svg(in_tmp / "deep" / "curves.svg")
    assert capsys.readouterr().err == ""  # the caller chose the path: nothing to say
    with pytest.raises(ValueError, match="fmt"):
        plot.Animator(fmt="jpg")


def test_figure_dir_can_be_chosen(in_tmp, monkeypatch):
    monkeypatch.setenv(plot.FIGURE_DIR_ENV, str(in_tmp / "from-env"))
    assert plot.figure_dir() == in_tmp / "from-env"
    plot.set_figure_dir(in_tmp / "chosen")
    try:
        assert plot.show_images(np.random.default_rng(0).random((2, 28, 28)), 1, 2) is not None
        assert_png(in_tmp / "chosen" / "images.png")
    finally:
        plot.set_figure_dir(None)


def test_static_figures(in_tmp):
    rng = np.random.default_rng(0)
    train_iter, test_iter = tiny_iterators()
    model = SoftmaxRegression(seed=0)
    model.fit(train_iter, test_iter, 2, 0.5)
    probabilities = model.predict_proba(test_iter.images)
    written = [
        plot.predict_ch3(model, test_iter, path=in_tmp / "predictions.png"),
        plot.plot_weight_templates(model.W, path=in_tmp / "weights.png"),
        plot.plot_confusion_matrix(test_iter.labels, probabilities.argmax(axis=1), path=in_tmp / "confusion.png"),
        plot.plot_risk_coverage(probabilities, test_iter.labels, path=in_tmp / "risk.png"),
    ]
    assert written == [in_tmp / name for name in ("predictions.png", "weights.png", "confusion.png", "risk.png")]
    for path in written:
        assert_png(path, min_width=400)
    axes = plot.show_images(rng.random((5, 28, 28)), 2, 3, titles=list("abcde"), path=in_tmp / "grid.svg")
    assert len(axes) == 6
    assert_svg(in_tmp / "grid.svg")
    assert plot.plot_weight_templates(rng.normal(size=(784, 3)), labels=["x", "y", "z"],
                                      path=in_tmp / "three.png") == in_tmp / "three.png"


def test_figures_reject_bad_input(in_tmp):
    with pytest.raises(ValueError, match=r"W: expected shape \(784, classes\)"):
        plot.plot_weight_templates(np.zeros((100, 10)))
    with pytest.raises(ValueError, match="expected 10 class names"):
        plot.plot_weight_templates(np.zeros((784, 10)), labels=["a"])
    with pytest.raises(ValueError, match="at most 2 images"):
        plot.show_images(np.zeros((3, 28, 28)), 1, 2)
    with pytest.raises(ValueError, match="no examples"):
        plot.predict_ch3(lambda X: X, [])


class FakeDisplayHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


@pytest.fixture
def notebook(monkeypatch):
    """Pretend to run in a Jupyter kernel, recording what is displayed."""
    import IPython
    import IPython.display

    class Shell:
        config = {"IPKernelApp": {}}

    log = []

    def display(obj, display_id=None):
        log.append(("display", obj))
        return FakeDisplayHandle(log) if display_id else None

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(IPython.display, "display", display)
    return log


def test_in_jupyter_the_animator_redraws_in_place(notebook, in_tmp):
    from IPython.display import SVG

    assert plot.in_notebook()
    animator = plot.training_animator(3)
    for metrics in epochs(3):
        animator.add_epoch(metrics)
    assert [kind for kind, _ in notebook] == ["display", "update", "update"]
    assert all(isinstance(obj, SVG) and "<svg" in obj.data for _, obj in notebook)
    assert not (in_tmp / "csoftmax-figures").exists()  # shown, not written


def test_in_jupyter_figures_are_displayed_and_written_only_when_asked(notebook, in_tmp):
    images = np.random.default_rng(0).random((2, 28, 28))
    plot.show_images(images, 1, 2)
    assert len(notebook) == 1 and not (in_tmp / "csoftmax-figures").exists()
    assert plot.show_images(images, 1, 2, path=in_tmp / "kept.png") is not None
    assert len(notebook) == 2
    assert_png(in_tmp / "kept.png")


def test_drawing_needs_no_display_and_never_imports_pyplot(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from csoftmax.d2l import plot\n"
        "a = plot.training_animator(2); a.add(1, [0.5, 0.6, 0.7])\n"
        "plot.show_images(np.zeros((1, 28, 28)), 1, 1)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["MPLBACKEND"] = "TkAgg"  # an interactive backend: it would fail here if anything used it
    result = subprocess.run([sys.executable, "-W", "error", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "csoftmax-figures" / "training-curves.png").exists()
