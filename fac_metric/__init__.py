"""fac_metric: Feature Activation Coverage, the measurement and what it needs to read features.

The parts, each a folder (``docs/architecture.md`` draws how data flows through them):

- ``space/``: the feature space: an LM read at one layer + an SAE -> ``SparseActivations``;
- ``measure/``: activations, δ (``Threshold``), profiles, relevant features, the FAC math;
- ``scoring.py``: the one pipeline through them (``Scorer``, ``score``);
- ``meaning/``: what features mean and where they fire: spans, explanations, reports;
- ``llm/``: LLM backends (local, HTTP) behind one ``Generator``, and their answer cache;
- ``training/``: training an SAE into a new feature space;
- ``baselines/``: the text-diversity and embedding measures users already compute, beside FAC;
- ``fac/``: the ``evaluate`` module.

Names are imported on first use, so ``import fac_metric`` costs no torch until a model is needed.

>>> import fac_metric
>>> fac_metric.MODULE_PATH.endswith("fac")
True
"""

from __future__ import annotations

from pathlib import Path

from fac_metric._lazy import lazy_names

MODULE_PATH = str(Path(__file__).parent / "fac")
"""Folder of the ``evaluate`` module: ``evaluate.load(fac_metric.MODULE_PATH)``."""

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_names(__name__, {
    "FacError": "fac_metric.errors", "FacInputError": "fac_metric.errors", "FacModelError": "fac_metric.errors",
    "FacMismatchError": "fac_metric.errors", "FacWarning": "fac_metric.errors",
    "FeatureSpace": "fac_metric.space.feature_space", "get_feature_space": "fac_metric.space.feature_space",
    "SpaceSource": "fac_metric.space.feature_space", "DEFAULT_THRESHOLD": "fac_metric.space.feature_space",
    "SparseActivations": "fac_metric.measure.activations", "Threshold": "fac_metric.measure.threshold",
    "FeatureProfile": "fac_metric.measure.profile", "FACResult": "fac_metric.measure.profile",
    "fac": "fac_metric.measure.profile",
    "RelevanceSpec": "fac_metric.measure.relevance", "Relevance": "fac_metric.measure.relevance",
    "Scorer": "fac_metric.scoring", "ScoreOutput": "fac_metric.scoring", "score": "fac_metric.scoring",
    "load_example": "fac_metric.examples", "compute_baselines": "fac_metric.baselines.compute",
    "Ranks": "fac_metric.ranks",
})


def load(**kwargs):
    """The FAC measurement, as ``evaluate.load(MODULE_PATH, **kwargs)`` returns it."""
    import evaluate

    return evaluate.load(MODULE_PATH, **kwargs)


def load_metric(name: str = "fac", **kwargs):
    """For scripts written against the removed ``datasets.load_metric``: ``load_metric("fac")``."""
    if name not in {"fac", MODULE_PATH}:
        from fac_metric.errors import FacInputError

        raise FacInputError(f"load_metric({name!r}): fac_metric only provides 'fac'; use evaluate.load for others")
    return load(**kwargs)


__all__ = [
    "__version__", "MODULE_PATH", "load", "load_metric", "FeatureSpace", "get_feature_space", "SpaceSource", "DEFAULT_THRESHOLD",
    "SparseActivations", "Threshold", "FeatureProfile", "FACResult", "fac", "RelevanceSpec", "Relevance",
    "Scorer", "ScoreOutput", "score", "load_example", "compute_baselines", "Ranks",
    "FacError", "FacInputError", "FacModelError", "FacMismatchError", "FacWarning",
]
