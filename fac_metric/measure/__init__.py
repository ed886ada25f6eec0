"""Measurement: sparse activations, δ, profiles, relevant features and the FAC math, in numpy.

Owns: ``SparseActivations`` (the result of encoding, saved with its space's fingerprint),
``Threshold`` (δ resolved once), ``FeatureProfile`` (built only from activations, merged by
max/sum), ``RelevanceSpec`` and the choice of relevant features (contrast test, all, the LLM
judge through a given generator), and ``fac()``. Must not: import torch, run the feature space
or load models: everything here is cheap once texts are encoded.
"""

from fac_metric._lazy import lazy_names

_REL = "fac_metric.measure.relevance"
_CH = "fac_metric.measure.choices"
__getattr__, __dir__ = lazy_names(__name__, {
    "SparseActivations": "fac_metric.measure.activations", "Threshold": "fac_metric.measure.threshold",
    "FeatureProfile": "fac_metric.measure.profile", "FACResult": "fac_metric.measure.profile",
    "fac": "fac_metric.measure.profile", "PROFILE_META": "fac_metric.measure.profile",
    "RelevanceSpec": _REL, "Relevance": _REL, "select_relevant": _REL, "contrast_features": _REL,
    "all_features": _REL, "benjamini_hochberg": _REL,
    "RELEVANCE_MODES": _CH, "DEFAULT_RELEVANCE": _CH, "DEFAULT_ALPHA": _CH, "DEFAULT_MAX_JUDGED": _CH,
    "shipped_guidelines": _CH, "COVERAGES": _CH, "DEFAULT_COVERAGE": _CH, "default_relevance": _CH,
    "AnchorMatch": "fac_metric.measure.match", "jaccard": "fac_metric.measure.match",
    "judge_features": "fac_metric.measure.judge", "load_guideline": "fac_metric.measure.judge",
})
__all__ = sorted(__dir__())
