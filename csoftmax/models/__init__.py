"""The models: the chapter's SGD `SoftmaxRegression`, its recipe, and what training reports.

`logistic_regression` (scikit-learn's LogisticRegression on the fused kernels) and `dask` (its cluster
fit) are not imported here: they need the ``csoftmax[sklearn]`` / ``csoftmax[dask]`` extras, which
``import csoftmax`` must not require. `csoftmax.LogisticRegression` imports them on first use.
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
