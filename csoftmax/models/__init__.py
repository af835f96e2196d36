"""The models: the chapter's SGD `SoftmaxRegression`, its recipe, and what training reports.

`logistic_regression` (and `dask`, the cluster fit) are imported on their own: they need scikit-learn
and SciPy (the ``csoftmax[sklearn]`` extra; ``csoftmax[dask]`` for the cluster), which
``import csoftmax`` must not require.
"""

from .metrics import EpochMetrics, RiskCoverage, confusion_matrix, risk_coverage
from .recipe import RecipeResult, run_recipe, train_recipe
from .softmax_regression import ModelFileError, SoftmaxRegression

__all__ = [
    "EpochMetrics",
    "ModelFileError",
    "RecipeResult",
    "RiskCoverage",
    "SoftmaxRegression",
    "confusion_matrix",
    "risk_coverage",
    "run_recipe",
    "train_recipe",
]
