"""Which features matter for a task: ``contrast`` (a statistical test), ``judge`` (an LLM), ``all``.

Owns: choosing F(P), the task-relevant features FAC is computed over, from the anchor's profile.

- ``contrast`` (default): features the anchor fires on significantly more often than a contrast
  set does: a one-sided Fisher exact test per feature, Benjamini-Hochberg false-discovery
  control over all features the anchor covers. The contrast set is the feature space's shipped
  generic background unless the user passes one (for a classifier, its negative class).
- ``judge``: the paper's LLM judge reads each candidate feature's explanation and spans against a
  task guideline and answers Yes / Probably / Maybe / No (the first three = relevant). A local
  backend answers by comparing the likelihood of the four decisions (nothing to parse); an HTTP
  backend's text is parsed, unparseable answers are retried and then recorded as unknown.
- ``all``: every feature the anchor covers that is not generic (fires on at most half the
  background texts).

How to choose is said once, in a :class:`RelevanceSpec` (mode and its options, or explicit
feature ids), validated before any text is encoded; every entry point (``score``, the evaluate
module, ``augment_with_fac``, ``fac score``, ``fac augment``) takes the same spec or the same
keywords. Must not: compute FAC (``profile.fac``) or run the feature space; the judge
(:mod:`fac_metric.measure.judge`) asks an LLM only through the generator it is given.

>>> import numpy as np
>>> from fac_metric.measure.profile import FeatureProfile
>>> from fac_metric.measure.threshold import Threshold
>>> thr = Threshold.relative(1.0, np.ones(3, np.float32), "fp")
>>> anchor = FeatureProfile(np.full(3, 5.0, np.float32), np.array([40, 10, 0]), thr, n_texts=50)
>>> background = FeatureProfile(np.full(3, 5.0, np.float32), np.array([5, 45, 2]), thr, n_texts=100)
>>> contrast_features(anchor, background).features.tolist()    # 80% vs 5%: enriched; 20% vs 45%: not
[0]
>>> all_features(anchor, background).features.tolist()
[0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fac_metric.errors import FacInputError
from fac_metric.measure.choices import DEFAULT_ALPHA, DEFAULT_MAX_JUDGED, DEFAULT_RELEVANCE, RELEVANCE_MODES
from fac_metric.measure.profile import FeatureProfile

GENERIC_FRACTION = 0.5
"""A feature active on more than this share of background texts is generic (``all`` mode)."""
FEW_RELEVANT = 50
"""Below this many relevant features FAC moves in coarse steps and saturates quickly: say so."""


@dataclass(frozen=True)
class RelevanceSpec:
    """How F(anchor), the task-relevant features, is chosen: validated when made.

    >>> RelevanceSpec.of("all").mode, RelevanceSpec.of([3, 1]).features
    ('all', (1, 3))
    >>> RelevanceSpec.of("judge")
    Traceback (most recent call last):
    ...
    fac_metric.errors.FacInputError: relevance='judge' needs a generator (e.g. 'local' or 'http://127.0.0.1:8000/v1')
    """

    mode: str = DEFAULT_RELEVANCE
    """``contrast``, ``judge``, ``all``, or ``given`` (``features``)."""
    features: tuple[int, ...] | None = None
    """Explicit relevant feature ids (mode ``given``)."""
    contrast: Any = None
    """``contrast`` mode's contrast set (texts, activations, a profile or its folder); None: the space's background."""
    alpha: float = DEFAULT_ALPHA
    """False-discovery rate of the contrast test."""
    generator: Any = None
    """``judge`` mode's LLM: ``"local"``, a model folder, an ``http(s)://.../v1`` URL, or a ``Generator``."""
    guideline: str | None = None
    """``judge`` mode's task guideline: a shipped name or your own sentence."""
    max_judged: int | None = DEFAULT_MAX_JUDGED
    """``judge`` mode judges at most this many candidates (None: all)."""

    def __post_init__(self) -> None:
        if self.mode not in (*RELEVANCE_MODES, "given"):
            raise FacInputError(f"relevance={self.mode!r} is not one of {RELEVANCE_MODES}, or a list of feature ids")
        if (self.mode == "given") != (self.features is not None):
            raise FacInputError("relevance: give feature ids for mode 'given', and only then")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise FacInputError(f"alpha={self.alpha!r} must lie strictly between 0 and 1")
        if self.max_judged is not None and (isinstance(self.max_judged, bool) or not isinstance(
                self.max_judged, (int, np.integer)) or self.max_judged < 0):
            raise FacInputError(f"max_judged={self.max_judged!r} must be a whole number >= 0, or None")
        if self.mode == "judge":
            from fac_metric.measure.judge import load_guideline

            if self.generator is None:
                raise FacInputError("relevance='judge' needs a generator (e.g. 'local' or 'http://127.0.0.1:8000/v1')")
            load_guideline(self.guideline)

    @classmethod
    def of(cls, relevance: "str | Sequence[int] | RelevanceSpec | None" = DEFAULT_RELEVANCE,
           **options: Any) -> "RelevanceSpec":
        """A spec from a mode name, a list of feature ids, or a spec; ``options`` (the fields
        above) fill or override it. ``None`` options are left at their defaults.

        >>> RelevanceSpec.of("contrast", alpha=0.01).alpha
        0.01
        """
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise FacInputError(f"unknown relevance option(s) {unknown}")
        if isinstance(relevance, RelevanceSpec):
            return cls(**{**relevance.__dict__, **options})
        if relevance is None:
            relevance = DEFAULT_RELEVANCE
        if isinstance(relevance, str):
            return cls(mode=relevance, **options)
        if isinstance(relevance, (bytes, dict)) or not hasattr(relevance, "__iter__"):
            raise FacInputError(f"relevance must be a mode {RELEVANCE_MODES}, a list of feature ids or a "
                                f"RelevanceSpec, not {type(relevance).__name__}")
        ids = []
        for f in relevance:
            if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
                raise FacInputError(f"relevant feature ids must be whole numbers >= 0; got {f!r}")
            ids.append(int(f))
        return cls(mode="given", features=tuple(sorted(set(ids))), **options)

    def describe(self) -> dict:
        """Plain data for run keys and reports (a generator instance by its name)."""
        gen = self.generator
        return {"mode": self.mode, "features": list(self.features) if self.features is not None else None,
                "alpha": self.alpha, "guideline": self.guideline, "max_judged": self.max_judged,
                "generator": getattr(gen, "name", gen) if self.mode == "judge" else None,
                "contrast": None if self.contrast is None else "given"}


@dataclass
class Relevance:
    """The relevant features and how they were chosen."""

    mode: str
    features: np.ndarray
    """Relevant feature ids, ascending."""
    n_candidates: int
    """Features the anchor covers that the mode considered."""
    details: dict = field(default_factory=dict)
    """Mode specifics: the test's α, the guideline and parse rate of the judge, ..."""
    per_feature: dict[int, dict] = field(default_factory=dict)
    """Per considered feature: p/q-values (contrast) or the decision (judge)."""
    warning: str | None = None

    @property
    def n_relevant(self) -> int:
        return int(len(self.features))

    def summary(self) -> dict:
        """Plain data for reports: mode, counts, details and the warning."""
        return {"mode": self.mode, "n_relevant": self.n_relevant, "n_candidates": self.n_candidates,
                **self.details, **({"warning": self.warning} if self.warning else {})}


def _finish(mode: str, mask: np.ndarray, n_candidates: int, details: dict, per_feature: dict) -> Relevance:
    ids = np.flatnonzero(mask)
    warning = None
    rate = details.get("parse_rate")
    if rate is not None and rate < 0.5:
        warning = (f"the judge's answers could be read for only {rate:.0%} of the features judged (the rest are unknown, "
                   "never guessed): use a stronger model, or the local backend, which decides by likelihood")
    elif not len(ids):
        warning = (f"no feature passed ({mode}{', ' + str(n_candidates) + ' candidates' if n_candidates else ''}), so "
                   "FAC is undefined: a test on few anchor texts has little evidence. Use more anchor texts, or "
                   "relevance='all' (with coverage='match', the default, it needs no test)")
    elif len(ids) < FEW_RELEVANT:
        warning = (f"only {len(ids)} relevant features ({mode}): FAC moves in steps of 1/{len(ids)} and "
                   "saturates quickly; use more anchor texts, or relevance='all' with coverage='match'")
    return Relevance(mode, ids, n_candidates, details, per_feature, warning)


def _shares(prof: FeatureProfile) -> np.ndarray:
    return prof.count / max(prof.n_texts, 1)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values (BH-adjusted p-values) for ``p``, same order: ``scipy.stats.false_discovery_control``.

    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p, float)
    return false_discovery_control(p, method="bh") if len(p) else p


def contrast_features(anchor: FeatureProfile, contrast: FeatureProfile, *, alpha: float = DEFAULT_ALPHA) -> Relevance:
    """Features the anchor fires on significantly more often than ``contrast`` (see module doc).

    The test: for feature i with ``a`` of ``n_a`` anchor texts and ``c`` of ``n_c`` contrast texts
    active, the one-sided Fisher exact p-value ``P(X >= a)`` with X hypergeometric (``n_a + n_c``
    texts, ``a + c`` active, ``n_a`` drawn); q-values by Benjamini-Hochberg over the features the
    anchor covers; relevant when ``q <= alpha``.
    """
    from scipy.stats import hypergeom

    anchor.check_compatible(contrast, "anchor and contrast profiles")
    if not 0 < alpha < 1:
        raise FacInputError(f"alpha={alpha} must lie strictly between 0 and 1")
    tested = np.flatnonzero(anchor.active)
    a, c = anchor.count[tested], contrast.count[tested]
    p = hypergeom.sf(a - 1, anchor.n_texts + contrast.n_texts, a + c, anchor.n_texts)
    q = benjamini_hochberg(p)
    mask = np.zeros(anchor.d_sae, bool)
    mask[tested[q <= alpha]] = True
    per = {int(i): {"p": float(pi), "q": float(qi), "anchor_share": float(ai / anchor.n_texts),
                    "contrast_share": float(ci / max(contrast.n_texts, 1))}
           for i, pi, qi, ai, ci in zip(tested, p, q, a, c)}
    details = {"test": "one-sided Fisher exact, Benjamini-Hochberg", "alpha": alpha,
               "n_contrast_texts": contrast.n_texts, "n_anchor_texts": anchor.n_texts}
    return _finish("contrast", mask, len(tested), details, per)


def all_features(anchor: FeatureProfile, background: FeatureProfile | None = None, *,
                 generic_fraction: float = GENERIC_FRACTION) -> Relevance:
    """Every feature the anchor covers that is not generic on the background."""
    mask = anchor.active.copy()
    if background is not None:
        anchor.check_compatible(background, "anchor and background profiles")
        mask &= _shares(background) <= generic_fraction
    return _finish("all", mask, int(anchor.active.sum()), {"generic_fraction": generic_fraction}, {})


def select_relevant(spec: RelevanceSpec, anchor: FeatureProfile, *, background: FeatureProfile | None = None,
                    contrast: FeatureProfile | None = None, space=None, generator=None, anchor_spans: dict | None = None,
                    cache_dir=None, show_progress: bool = False) -> Relevance:
    """The relevant features ``spec`` asks for, from the anchor's profile.

    ``contrast``: the profile of ``spec.contrast`` (None: ``background``); ``generator``: the
    judge, already loaded from ``spec.generator``; ``anchor_spans``: the anchor's own top spans,
    shown to the judge.
    """
    if spec.mode == "given":
        mask = np.zeros(anchor.d_sae, bool)
        ids = np.asarray(spec.features, np.int64)
        if ids.size and ids.max() >= anchor.d_sae:
            raise FacInputError(f"relevant feature ids must lie in [0, {anchor.d_sae}); got up to {ids.max()}")
        mask[ids] = True
        return Relevance("given", np.flatnonzero(mask), len(ids), {}, {})
    if spec.mode == "contrast":
        against = contrast if contrast is not None else background
        if against is None:
            raise FacInputError("relevance='contrast' needs a contrast set: this feature space ships no background, "
                                "so pass contrast=<texts or a saved profile>, or use relevance='all'")
        return contrast_features(anchor, against, alpha=spec.alpha)
    if spec.mode == "all":
        return all_features(anchor, background)
    from fac_metric.measure.judge import judge_features

    if generator is None or space is None:
        raise FacInputError("relevance='judge' needs a generator (e.g. 'local' or 'http://127.0.0.1:8000/v1')")
    return judge_features(anchor, background, space, generator, spec.guideline, max_judged=spec.max_judged,
                          anchor_spans=anchor_spans, cache_dir=cache_dir, show_progress=show_progress)


__all__ = ["RelevanceSpec", "Relevance", "select_relevant", "contrast_features", "all_features", "benjamini_hochberg",
           "RELEVANCE_MODES", "DEFAULT_RELEVANCE", "DEFAULT_ALPHA", "DEFAULT_MAX_JUDGED", "GENERIC_FRACTION",
           "FEW_RELEVANT"]
