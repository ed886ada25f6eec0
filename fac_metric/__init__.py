"""fac_metric: Feature Activation Coverage, the measurement and what it needs to read features.

>>> import fac_metric
>>> fac_metric.MODULE_PATH.endswith("fac")
True
"""

from __future__ import annotations

from pathlib import Path

from .activations import SparseActivations
from .errors import FacError, FacInputError, FacMismatchError, FacModelError
from .feature_space import DEFAULT_THRESHOLD, FeatureSpace
from .profile import FACResult, FeatureProfile, fac
from .scoring import ScoreOutput, get_feature_space, score

MODULE_PATH = str(Path(__file__).parent / "fac")
"""Folder of the ``evaluate`` module: ``evaluate.load(fac_metric.MODULE_PATH)``."""

__version__ = "0.1.0"


def load(**kwargs):
    """The FAC measurement, as ``evaluate.load(MODULE_PATH, **kwargs)`` returns it."""
    import evaluate

    return evaluate.load(MODULE_PATH, **kwargs)


def load_metric(name: str = "fac", **kwargs):
    """For scripts written against the removed ``datasets.load_metric``: ``load_metric("fac")``."""
    if name not in {"fac", MODULE_PATH}:
        raise FacInputError(f"load_metric({name!r}): fac_metric only provides 'fac'; use evaluate.load for others")
    return load(**kwargs)


__all__ = [
    "MODULE_PATH", "load", "load_metric", "FeatureSpace", "FeatureProfile", "FACResult", "SparseActivations",
    "ScoreOutput", "fac", "score", "get_feature_space", "DEFAULT_THRESHOLD",
    "FacError", "FacInputError", "FacModelError", "FacMismatchError",
]
