"""csoftmax: softmax regression from scratch, with a fused C++ linear + softmax + cross-entropy kernel."""

from ._isa import check_this_cpu

check_this_cpu()  # before _core: a build for instructions this CPU lacks would die of SIGILL on import

try:
    from . import _core  # noqa: F401
except ImportError as exc:
    # a setting that cannot be had: _core says why
    if str(exc).startswith(("CSOFTMAX_ISA=", "CSOFTMAX_AMX=", "CSOFTMAX_VNNI=")):
        raise
    # The usual cause: Python found the source tree (the current directory comes first on sys.path
    # under `python -m pytest` or `python -c`) before the installed package.
    raise ImportError(
        f"csoftmax's compiled extension (csoftmax._core) could not be imported from {__path__[0]}: "
        "was the package built? Install it with `pip install .`; if that is done and this is the source "
        "tree, run from another directory, or use `pytest` rather than `python -m pytest`, which puts the "
        "source tree ahead of the installed package."
    ) from exc

from .config import build_info, get_num_threads, set_num_threads, show_config
from .data import (
    FashionMNIST,
    SampleDataWarning,
    get_fashion_mnist_labels,
    load_data_fashion_mnist,
    load_fashion_mnist,
)
from .models import (
    EpochMetrics,
    ModelFileError,
    RecipeResult,
    RiskCoverage,
    SoftmaxRegression,
    confusion_matrix,
    risk_coverage,
    run_recipe,
    train_recipe,
)
from .ops import cross_entropy, linear_cross_entropy, linear_softmax, log_softmax, predict, softmax
from .result import LinearCrossEntropyResult

__version__ = "0.1.0"


def __getattr__(name):
    # LogisticRegression needs scikit-learn and SciPy, which `import csoftmax` must not: load it on first use.
    if name == "LogisticRegression":
        try:
            from .models.logistic_regression import LogisticRegression
        except ImportError as exc:
            raise ImportError(
                f"csoftmax.LogisticRegression needs scikit-learn and SciPy ({exc}): "
                'pip install "csoftmax[sklearn]"'
            ) from exc
        return LogisticRegression
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# (LogisticRegression is left out: `from csoftmax import *` must work without scikit-learn.)
__all__ = [
    "EpochMetrics",
    "FashionMNIST",
    "LinearCrossEntropyResult",
    "ModelFileError",
    "RecipeResult",
    "RiskCoverage",
    "SampleDataWarning",
    "SoftmaxRegression",
    "build_info",
    "confusion_matrix",
    "cross_entropy",
    "get_fashion_mnist_labels",
    "get_num_threads",
    "linear_cross_entropy",
    "linear_softmax",
    "load_data_fashion_mnist",
    "load_fashion_mnist",
    "log_softmax",
    "predict",
    "risk_coverage",
    "run_recipe",
    "set_num_threads",
    "show_config",
    "softmax",
    "train_recipe",
]
