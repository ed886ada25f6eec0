"""One call from texts to a FAC result: what the evaluate module, the CLI and Python users share.

Owns: caching loaded feature spaces (the LM and SAE load once per process, not per
``compute()``), turning data, anchor and contrast sets given as texts or saved profiles into
profiles (the anchor's top spans are collected in the same pass), and choosing the relevant
features through :mod:`fac_metric.relevance`. Must not: parse files (the CLI does) or print.

>>> from fac_metric.scoring import score
>>> out = score(["Write a limerick about a cat."], ["Write a poem about the sea.", "Write a story about a dog."],
...             show_progress=False)
>>> 0.0 <= out.result.fac <= 1.0 and out.result.n_reference > 0
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import FacInputError, FacMismatchError
from .feature_space import FeatureSpace
from .profile import FACResult, FeatureProfile, fac
from .relevance import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_JUDGED,
    DEFAULT_RELEVANCE,
    RELEVANCE_MODES,
    Relevance,
    load_guideline,
    select_relevant,
)
from .spans import SPAN_CHUNK, TopSpans

_SPACES: dict[tuple, FeatureSpace] = {}


def get_feature_space(spec: Any = None, *, device: str | None = None, dtype: str = "auto") -> FeatureSpace:
    """A ``FeatureSpace`` from a folder, Hub id, ``None`` (the default) or an instance, cached per process."""
    if isinstance(spec, FeatureSpace):
        return spec
    key = (str(Path(spec).resolve()) if spec is not None and Path(os.fspath(spec)).exists() else spec, device, str(dtype))
    if key not in _SPACES:
        _SPACES[key] = FeatureSpace.load(spec, device=device, dtype=dtype)
    return _SPACES[key]


@dataclass
class ScoreOutput:
    """A FAC result with the profiles it was computed from (to save, merge or plot)."""

    result: FACResult
    data_profile: FeatureProfile
    anchor_profile: FeatureProfile | None
    space: FeatureSpace
    relevance: Relevance | None = None
    """How the relevant features were chosen (None without an anchor or with given features)."""
    anchor_spans: TopSpans | None = None
    """The anchor's own top spans per feature (None when the anchor came as a saved profile)."""


def background_profile(space: FeatureSpace, threshold: float) -> FeatureProfile | None:
    """The shipped background corpus' profile at ``threshold`` (None if the space has none)."""
    if space.background is None:
        return None
    return FeatureProfile.from_activations(space.background, space.absolute_thresholds(threshold), threshold,
                                           space.fingerprint)


def as_profile(space: FeatureSpace, texts_or_profile: Any, threshold: float, *, batch_size: int = 32,
               show_progress: bool = True, desc: str = "Profiling", name: str = "data",
               spans: int = 0) -> tuple[FeatureProfile, TopSpans | None]:
    """A profile from texts, a ``FeatureProfile``, or the folder of a saved profile.

    With ``spans=k`` and texts, each feature's top-``k`` spans are kept in the same pass.
    """
    if isinstance(texts_or_profile, FeatureProfile):
        prof = texts_or_profile
    elif FeatureProfile.is_saved(texts_or_profile):
        prof = FeatureProfile.load(texts_or_profile)
    else:
        if texts_or_profile is None:
            raise FacInputError(f"{name} is None: pass a list of texts or a saved profile folder")
        try:
            return _profile_texts(space, texts_or_profile, threshold, batch_size, show_progress, desc, spans)
        except FacInputError as err:
            raise FacInputError(f"{name}: {err}") from err
    if prof.fingerprint != space.fingerprint:
        raise FacMismatchError(f"saved {name} profile was made with another feature space "
                               f"({prof.fingerprint} vs {space.fingerprint}): re-profile it with this one")
    if prof.threshold != threshold:
        raise FacMismatchError(f"saved {name} profile was counted at δ={prof.threshold}, not δ={threshold}: "
                               f"re-profile it, or pass threshold={prof.threshold}")
    return prof, None


def _profile_texts(space, texts, threshold, batch_size, show_progress, desc, spans):
    if not spans:
        return FeatureProfile.from_texts(space, texts, threshold=threshold, batch_size=batch_size,
                                         show_progress=show_progress, desc=desc), None
    prof = FeatureProfile.empty(space.d_sae, space.absolute_thresholds(threshold), threshold, space.fingerprint)
    heaps = TopSpans.for_space(space, spans)
    for chunk in space.iter_peaks(texts, batch_size=batch_size, chunk_size=SPAN_CHUNK, show_progress=show_progress,
                                  desc=desc):
        prof.update(chunk.acts)
        heaps.update(chunk)
    if prof.n_texts == 0:
        raise FacInputError("no texts to profile: pass at least one string or chat")
    return prof, heaps


def score(
    data: Iterable | FeatureProfile,
    anchor: Iterable | FeatureProfile | str | None = None,
    *,
    feature_space: Any = None,
    threshold: float | None = None,
    relevance: str = DEFAULT_RELEVANCE,
    relevant_features: Sequence[int] | None = None,
    contrast: Iterable | FeatureProfile | str | None = None,
    generator: Any = None,
    guideline: str | None = None,
    max_judged: int | None = DEFAULT_MAX_JUDGED,
    alpha: float = DEFAULT_ALPHA,
    anchor_spans: int = 5,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> ScoreOutput:
    """FAC of ``data`` against ``anchor`` (texts or saved profiles) in ``feature_space``.

    ``relevance`` picks F(anchor) (``contrast``, ``judge`` or ``all``: see
    :mod:`fac_metric.relevance`); ``relevant_features`` (ids) overrides it. ``contrast`` is the
    contrast set of ``contrast`` mode (default: the space's background); ``generator`` and
    ``guideline`` drive ``judge`` mode. ``anchor_spans`` top spans per feature are kept from
    the anchor pass, for the judge and the report (0 to skip).
    """
    if relevance not in RELEVANCE_MODES:
        raise FacInputError(f"relevance={relevance!r} is not one of {RELEVANCE_MODES}")
    gen = None
    if relevance == "judge" and anchor is not None and relevant_features is None:
        # Check the judge's arguments before minutes of encoding, not after.
        if generator is None:
            raise FacInputError("relevance='judge' needs a generator (e.g. 'local' or 'http://127.0.0.1:8000/v1')")
        load_guideline(guideline)
        from .generators import get_generator

        gen = get_generator(generator)
    space = get_feature_space(feature_space)
    delta = space.threshold if threshold is None else float(threshold)
    data_prof, _ = as_profile(space, data, delta, batch_size=batch_size, show_progress=show_progress,
                              desc="Profiling data", name="data")
    bg = background_profile(space, delta)
    if anchor is None:
        live = (bg.max_activation > 0) if bg is not None else None
        return ScoreOutput(fac(data_prof, None, live=live), data_prof, None, space)
    anchor_prof, heaps = as_profile(space, anchor, delta, batch_size=batch_size, show_progress=show_progress,
                                    desc="Profiling anchor", name="anchor", spans=anchor_spans)
    if relevant_features is not None:
        return ScoreOutput(fac(data_prof, anchor_prof, relevant=relevant_features), data_prof, anchor_prof, space,
                           None, heaps)
    contrast_prof = None
    if contrast is not None:
        contrast_prof, _ = as_profile(space, contrast, delta, batch_size=batch_size, show_progress=show_progress,
                                      desc="Profiling contrast", name="contrast")
    chosen = select_relevant(relevance, anchor_prof, background=bg, contrast=contrast_prof, space=space, generator=gen,
                             guideline=guideline, max_judged=max_judged, alpha=alpha, anchor_spans=heaps,
                             cache_dir=cache_dir, show_progress=show_progress)
    result = fac(data_prof, anchor_prof, relevant=chosen.features, relevance=chosen.mode)
    return ScoreOutput(result, data_prof, anchor_prof, space, chosen, heaps)


def top_missing(out: ScoreOutput, n: int = 20, *, explanations: dict[int, dict] | None = None,
                n_spans: int = 3) -> list[dict]:
    """The first ``n`` missing features with what a reader needs: how often and how strongly the
    anchor fires them, what they mean (LLM explanation when given, else the LLM-free summary) and
    where they fire (the anchor's own top spans, then the feature space's corpus spans)."""
    from .explain import top_spans

    rows = []
    ref = out.anchor_profile or out.data_profile
    for i in out.result.missing[: None if n < 0 else n]:
        fact = out.space.fact(i)
        llm = (explanations or {}).get(i)
        anchor = (out.anchor_spans.top(i) if out.anchor_spans is not None else [])[:n_spans]
        rows.append({
            "feature": int(i),
            "anchor_texts": int(ref.count[i]),
            "anchor_fraction": float(ref.count[i] / max(ref.n_texts, 1)),
            "max_activation": float(ref.max_activation[i]),
            "relative_strength": float(ref.max_activation[i] / max(float(ref.thresholds[i]), 1e-12)),
            "summary": fact.get("summary"),
            **({"explanation": llm["explanation"], "explanation_verified": llm.get("verified"),
                "explainer": llm.get("source")} if llm else {}),
            **({"background_fraction": fact["background_fraction"]} if "background_fraction" in fact else {}),
            **({"q_value": out.relevance.per_feature[i]["q"]} if out.relevance is not None
               and "q" in out.relevance.per_feature.get(i, {}) else {}),
            **({"decision": out.relevance.per_feature[i]["decision"]} if out.relevance is not None
               and "decision" in out.relevance.per_feature.get(i, {}) else {}),
            "anchor_spans": [s.to_dict() for s in anchor],
            "corpus_spans": [s.to_dict() for s in top_spans(out.space, i)[:n_spans]],
        })
    return rows


__all__ = ["score", "ScoreOutput", "get_feature_space", "background_profile", "as_profile", "top_missing"]
