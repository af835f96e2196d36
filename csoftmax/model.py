"""`csoftmax.model`, the module path earlier releases documented, is `csoftmax.models.softmax_regression`.

`from csoftmax.model import SoftmaxRegression` keeps working; new code writes
`from csoftmax import SoftmaxRegression`.
"""

import sys

from .models import softmax_regression

sys.modules[__name__] = softmax_regression
