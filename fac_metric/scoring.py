"""One call from texts to a FAC result: what the evaluate module, the CLI and Python users share.

Owns: caching loaded feature spaces (the LM and SAE load once per process, not per
``compute()``), turning an anchor given as texts or as a saved profile into a profile, and the
default relevance rule (the anchor's enriched features against the shipped background).
Must not: parse files (the CLI does) or print.

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


def background_profile(space: FeatureSpace, threshold: float) -> FeatureProfile | None:
    """The shipped background corpus' profile at ``threshold`` (None if the space has none)."""
    if space.background is None:
        return None
    return FeatureProfile.from_activations(space.background, space.absolute_thresholds(threshold), threshold,
                                           space.fingerprint)


def as_profile(space: FeatureSpace, texts_or_profile: Any, threshold: float, *, batch_size: int = 32,
               show_progress: bool = True, desc: str = "Profiling", name: str = "data") -> FeatureProfile:
    """A profile from texts, a ``FeatureProfile``, or the folder of a saved profile."""
    if isinstance(texts_or_profile, FeatureProfile):
        prof = texts_or_profile
    elif FeatureProfile.is_saved(texts_or_profile):
        prof = FeatureProfile.load(texts_or_profile)
    else:
        if texts_or_profile is None:
            raise FacInputError(f"{name} is None: pass a list of texts or a saved profile folder")
        try:
            prof = FeatureProfile.from_texts(space, texts_or_profile, threshold=threshold, batch_size=batch_size,
                                             show_progress=show_progress, desc=desc)
        except FacInputError as err:
            raise FacInputError(f"{name}: {err}") from err
        return prof
    if prof.fingerprint != space.fingerprint:
        raise FacMismatchError(f"saved {name} profile was made with another feature space "
                               f"({prof.fingerprint} vs {space.fingerprint}): re-profile it with this one")
    if prof.threshold != threshold:
        raise FacMismatchError(f"saved {name} profile was counted at δ={prof.threshold}, not δ={threshold}: "
                               f"re-profile it, or pass threshold={prof.threshold}")
    return prof


def score(
    data: Iterable | FeatureProfile,
    anchor: Iterable | FeatureProfile | str | None = None,
    *,
    feature_space: Any = None,
    threshold: float | None = None,
    relevant_features: Sequence[int] | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> ScoreOutput:
    """FAC of ``data`` against ``anchor`` (texts or saved profiles) in ``feature_space``."""
    space = get_feature_space(feature_space)
    delta = space.threshold if threshold is None else float(threshold)
    data_prof = as_profile(space, data, delta, batch_size=batch_size, show_progress=show_progress,
                           desc="Profiling data", name="data")
    anchor_prof = None
    if anchor is not None:
        anchor_prof = as_profile(space, anchor, delta, batch_size=batch_size, show_progress=show_progress,
                                 desc="Profiling anchor", name="anchor")
    bg = background_profile(space, delta)
    live = (bg.max_activation > 0) if bg is not None else None
    result = fac(data_prof, anchor_prof, relevant=relevant_features, background=bg, live=live)
    return ScoreOutput(result, data_prof, anchor_prof, space)


def top_missing(out: ScoreOutput, n: int = 20) -> list[dict]:
    """The first ``n`` missing features with the facts a reader needs."""
    rows = []
    facts = {f["id"]: f for f in out.space.facts} if out.space.facts else {}
    ref = out.anchor_profile or out.data_profile
    for i in out.result.missing[:n]:
        rows.append({
            "feature": int(i),
            "anchor_texts": int(ref.count[i]),
            "anchor_fraction": float(ref.count[i] / max(ref.n_texts, 1)),
            "max_activation": float(ref.max_activation[i]),
            "relative_strength": float(ref.max_activation[i] / max(float(ref.thresholds[i]), 1e-12)),
            **({"background_fraction": facts[i].get("background_fraction")} if i in facts else {}),
        })
    return rows


__all__ = ["score", "ScoreOutput", "get_feature_space", "background_profile", "as_profile", "top_missing"]
