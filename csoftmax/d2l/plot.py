"""Figures: the chapter's Animator, image grids and predictions, weight templates, the confusion matrix and
the risk–coverage curve.

Where a figure goes:
- in Jupyter it is displayed (as SVG, like the book's); the Animator redraws its figure in place after
  every point;
- anywhere else it is written to a file (PNG, or SVG for a `.svg` path) — the `path` you give, or else
  `figure_dir()`/<name>, and the first write says where on stderr. Nothing ever waits for a window or
  needs a display: figures are drawn with matplotlib's object API and saved by its Agg/SVG renderers,
  pyplot is never imported and no GUI backend is touched. (The book's Animator shows nothing at all
  outside a notebook; see d2l-en issue #1961.)
Every file is replaced atomically, so a viewer never sees half of one.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..data import FASHION_MNIST_LABELS, get_fashion_mnist_labels
from ..models.metrics import EpochMetrics, RiskCoverage, confusion_matrix, risk_coverage

__all__ = [
    "Animator",
    "figure_dir",
    "in_notebook",
    "plot_confusion_matrix",
    "plot_objective_curve",
    "plot_risk_coverage",
    "plot_weight_templates",
    "predict_ch3",
    "save_figure",
    "set_axes",
    "set_figure_dir",
    "show_images",
    "training_animator",
]

FIGURE_DIR_ENV = "CSOFTMAX_FIGURE_DIR"
DEFAULT_FIGURE_DIR = "csoftmax-figures"
PNG_DPI = 150

_figure_dir: Path | None = None


def in_notebook() -> bool:
    """Whether we run in a Jupyter kernel (where figures are displayed rather than written)."""
    ipython = sys.modules.get("IPython")  # never imported here: a notebook has imported it already
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def set_figure_dir(path: str | os.PathLike | None) -> None:
    """Where figures without a `path` are written outside Jupyter; None restores the default
    ($CSOFTMAX_FIGURE_DIR, else ./csoftmax-figures)."""
    global _figure_dir
    _figure_dir = None if path is None else Path(path)


def figure_dir() -> Path:
    return _figure_dir or Path(os.environ.get(FIGURE_DIR_ENV) or DEFAULT_FIGURE_DIR)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` to `path` (format from the suffix: .png, .svg, .pdf, ...), replacing any old file at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        fig.savefig(partial, dpi=PNG_DPI)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _svg(fig: Figure):
    from IPython.display import SVG

    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    return SVG(buffer.getvalue())


def _publish(fig: Figure, path, default_name: str) -> Path | None:
    """Display the figure in Jupyter; write it to `path` if given, or when not in Jupyter to the figure
    directory (saying where). Returns the file written, if any."""
    notebook = in_notebook()
    if notebook:
        from IPython.display import display

        display(_svg(fig))
    if path is None and notebook:
        return None
    written = save_figure(fig, path if path is not None else figure_dir() / default_name)
    if path is None:
        print(f"csoftmax: figure written to {written} (not in Jupyter)", file=sys.stderr)
    return written


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend) -> None:
    """Set the labels, limits, scales and legend of matplotlib axes."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


class Animator:
    """For plotting data in animation: `add(x, ys)` appends a point to each line and redraws.

    The book's Animator, plus `path` (where the figure goes outside Jupyter; default
    figure_dir()/animator.png, or .svg with fmt="svg") and `add_epoch(EpochMetrics)` for training
    callbacks. In Jupyter the figure redraws in place; elsewhere the file is rewritten after every point.
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", fmts=("-", "m--", "g-.", "r:"), nrows=1, ncols=1, figsize=(3.5, 2.5),
                 *, path: str | os.PathLike | None = None, fmt: str = "png", name: str = "animator"):
        if fmt not in ("png", "svg"):
            raise ValueError(f"fmt: expected 'png' or 'svg', got {fmt!r}")
        legend = [] if legend is None else list(legend)
        self.fig = Figure(figsize=figsize, layout="constrained")
        axes = self.fig.subplots(nrows, ncols, squeeze=False)
        self.axes = list(axes.flat)
        self.config_axes = lambda: set_axes(self.axes[0], xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
        self.X, self.Y, self.fmts = None, None, fmts
        self.notebook = in_notebook()
        self.path = Path(path) if path is not None else None
        if self.path is None and not self.notebook:
            self.path = figure_dir() / f"{name}.{fmt}"
            print(f"csoftmax: not in Jupyter: the plot is written to {self.path}, updated after each point",
                  file=sys.stderr)
        self._display_handle = None

    def add(self, x, y) -> None:
        """Add one point to each line (y: one value per line; x: one for all, or one per line) and redraw."""
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(b)
        self.axes[0].cla()
        for x_values, y_values, fmt in zip(self.X, self.Y, self.fmts):
            self.axes[0].plot(x_values, y_values, fmt)
        self.config_axes()
        self._show()

    def add_epoch(self, metrics: EpochMetrics) -> None:
        """Plot an epoch's train loss, train accuracy and test accuracy (a training callback)."""
        self.add(metrics.epoch, (metrics.train_loss, metrics.train_acc, metrics.test_acc))

    def _show(self) -> None:
        if self.notebook:
            if self._display_handle is None:
                from IPython.display import display

                self._display_handle = display(_svg(self.fig), display_id=True)
            else:
                self._display_handle.update(_svg(self.fig))
        if self.path is not None:
            save_figure(self.fig, self.path)


def training_animator(num_epochs: int, path: str | os.PathLike | None = None, fmt: str = "png") -> Animator:
    """The chapter's Animator of train loss, train accuracy and test accuracy over `num_epochs` epochs."""
    # One epoch would make xlim [1, 1], which matplotlib refuses with a warning.
    return Animator(xlabel="epoch", xlim=[1, max(num_epochs, 2)], ylim=[0.3, 0.9],
                    legend=["train loss", "train acc", "test acc"], path=path, fmt=fmt, name="training-curves")


def plot_objective_curve(objective_curve, *, path: str | os.PathLike | None = None) -> Path | None:
    """The objective of a full-batch fit (csoftmax.LogisticRegression.objective_curve_) per iteration."""
    curve = np.asarray(objective_curve, dtype=np.float64)
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.arange(len(curve)), curve, "-")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    ax.set_title(f"Objective (final {curve[-1]:.6f})")
    ax.grid(which="both")
    return _publish(fig, path, "curves.png")


def _image_grid(imgs, num_rows: int, num_cols: int, titles, scale: float):
    imgs = np.asarray(imgs)
    if imgs.ndim != 3 or len(imgs) > num_rows * num_cols:
        raise ValueError(
            f"imgs: expected at most {num_rows * num_cols} images of shape (height, width), got shape {imgs.shape}"
        )
    fig = Figure(figsize=(num_cols * scale, num_rows * scale * (1.4 if titles else 1.0)), layout="constrained")
    axes = fig.subplots(num_rows, num_cols, squeeze=False).flatten()
    for i, ax in enumerate(axes):
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if i < len(imgs):
            ax.imshow(imgs[i], cmap="gray")
            if titles:
                ax.set_title(titles[i], fontsize=8)
        else:
            ax.set_axis_off()
    return fig, axes


def show_images(imgs, num_rows: int, num_cols: int, titles: Sequence[str] | None = None, scale: float = 1.5,
                *, path: str | os.PathLike | None = None):
    """Plot a grid of images (n, height, width) with optional titles; returns the axes, as the book's."""
    fig, axes = _image_grid(imgs, num_rows, num_cols, titles, scale)
    _publish(fig, path, "images.png")
    return axes


def predict_ch3(net, test_iter, n: int = 6, *, path: str | os.PathLike | None = None) -> Path | None:
    """Show the first n test images with their true label over the predicted one (red where wrong)."""
    for X, y in test_iter:
        break
    else:
        raise ValueError("predict_ch3: the test iterator yielded no examples")
    n = min(n, len(y))
    predicted = np.asarray(net(X)).argmax(axis=1)
    trues = get_fashion_mnist_labels(y)
    preds = get_fashion_mnist_labels(predicted)
    titles = [true + "\n" + pred for true, pred in zip(trues, preds)]
    fig, axes = _image_grid(np.asarray(X)[0:n].reshape((n, 28, 28)), 1, n, titles[0:n], 1.5)
    for ax, true, pred in zip(axes, y[:n], predicted[:n]):
        if true != pred:
            ax.title.set_color("red")
    return _publish(fig, path, "predictions.png")


def _class_names(num_classes: int, labels) -> list[str]:
    if labels is not None:
        if len(labels) != num_classes:
            raise ValueError(f"labels: expected {num_classes} class names, got {len(labels)}")
        return list(labels)
    return list(FASHION_MNIST_LABELS) if num_classes == len(FASHION_MNIST_LABELS) else [str(c) for c in range(num_classes)]


def plot_weight_templates(W, labels: Sequence[str] | None = None, *, image_shape=(28, 28),
                          path: str | os.PathLike | None = None) -> Path | None:
    """Each class's weights (a column of W, shape (pixels, classes)) as an image: red pixels raise the
    class's score, blue ones lower it."""
    W = np.asarray(W, dtype=np.float32)
    if W.ndim != 2 or W.shape[0] != int(np.prod(image_shape)):
        raise ValueError(f"W: expected shape ({int(np.prod(image_shape))}, classes), got {W.shape}")
    names = _class_names(W.shape[1], labels)
    num_cols = min(5, W.shape[1])
    num_rows = -(-W.shape[1] // num_cols)
    fig = Figure(figsize=(1.8 * num_cols + 0.8, 2.0 * num_rows), layout="constrained")
    axes = fig.subplots(num_rows, num_cols, squeeze=False).flatten()
    limit = float(np.abs(W).max()) or 1.0
    for c, ax in enumerate(axes):
        ax.set_axis_off()
        if c < W.shape[1]:
            image = ax.imshow(W[:, c].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(names[c], fontsize=9)
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="weight")
    fig.suptitle("Weights of each class")
    return _publish(fig, path, "weights.png")


def plot_confusion_matrix(y_true, y_pred, labels: Sequence[str] | None = None, *,
                          path: str | os.PathLike | None = None) -> Path | None:
    """Counts of true class (rows) against predicted class (columns); `labels` names the classes (default:
    Fashion-MNIST's ten)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    num_classes = len(labels) if labels is not None else len(FASHION_MNIST_LABELS)
    counts = confusion_matrix(y_true, y_pred, num_classes)
    names = _class_names(num_classes, labels)
    fig = Figure(figsize=(0.6 * num_classes + 2.5, 0.6 * num_classes + 1.5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    dark = counts.max() * 0.5
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > dark else "black")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.4f})")
    return _publish(fig, path, "confusion.png")


def plot_risk_coverage(probabilities, labels, *, thresholds: Sequence[float] = (0.5, 0.7, 0.9),
                       path: str | os.PathLike | None = None) -> Path | None:
    """Exercise 4: accuracy of the predictions kept vs. the fraction kept, as the confidence threshold
    below which the model abstains rises; `thresholds` are marked on the curve."""
    curve: RiskCoverage = risk_coverage(probabilities, labels)
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(curve.coverage, curve.accuracy, "-")
    for threshold in thresholds:
        coverage, accuracy = curve.at_threshold(threshold)
        if coverage > 0:
            ax.plot(coverage, accuracy, "o", color="tab:red")
            ax.annotate(f"p ≥ {threshold:g}", (coverage, accuracy), textcoords="offset points", xytext=(-8, -14),
                        ha="right", fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("coverage (fraction answered)")
    ax.set_ylabel("accuracy of the answers")
    ax.set_title("Abstain when unsure: risk–coverage")
    ax.grid()
    return _publish(fig, path, "risk-coverage.png")
