"""Models trained on csoftmax's kernels.

Each module is imported on its own: `logistic_regression` needs scikit-learn and SciPy (the
``csoftmax[sklearn]`` extra), which ``import csoftmax`` must not require.
"""
