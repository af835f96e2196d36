"""csoftmax on a Dask cluster: ``from csoftmax.dask import LogisticRegression`` (the ``csoftmax[dask]`` extra).

The estimator lives in csoftmax/models/dask.py; this module is its short import path."""

from .models.dask import DaskLogisticObjective, LogisticRegression

__all__ = ["DaskLogisticObjective", "LogisticRegression"]
