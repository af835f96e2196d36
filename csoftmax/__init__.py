"""csoftmax: softmax regression from scratch, with a fused C++ linear + softmax + cross-entropy kernel."""

import os as _os

# libgomp lets a thread waiting at a barrier spin ~300,000 rounds before it sleeps. On an idle machine
# a short spin is just as fast (measured: the chapter's epoch takes the same time), but on a busy one
# the long spin holds a CPU that the thread being waited for needs: two csoftmax processes training at
# once took 915 ms per epoch instead of 21 ms. Set OMP_WAIT_POLICY or GOMP_SPINCOUNT to choose otherwise;
# this must happen before the extension loads libgomp.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "1000"

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "csoftmax's compiled extension (csoftmax._core) could not be imported: was the package built? "
        "Install it with `pip install .` from the source tree."
    ) from exc

from .config import build_info, get_num_threads, set_num_threads, show_config
from .data import (
    FashionMNIST,
    SampleDataWarning,
    get_fashion_mnist_labels,
    load_data_fashion_mnist,
    load_fashion_mnist,
)
from .metrics import EpochMetrics, RiskCoverage, confusion_matrix, risk_coverage
from .model import ModelFileError, SoftmaxRegression
from .ops import cross_entropy, linear_cross_entropy, linear_softmax, log_softmax, predict, softmax
from .recipe import RecipeResult, run_recipe, train_recipe
from .result import LinearCrossEntropyResult

__version__ = "0.1.0"

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
