"""The one measuring pipeline: texts or activations -> profiles -> relevant features -> FAC.

Owns: :class:`Scorer`, the pipeline with its choices made once (the feature space, δ as a
``Threshold``, the ``RelevanceSpec``), whose stages are public and cheap past encoding:
``profile`` (texts, ``SparseActivations``, a ``FeatureProfile`` or a saved one), ``relevant``
(the anchor's relevant features) and ``fac``; and :func:`score`, one call from texts to a FAC
result. ``score``, the evaluate module, ``fac score``, ``augment_with_fac`` and ``fac augment``
all measure through a ``Scorer``. Must not: parse files (the CLI does), print, or encode texts
itself (the feature space does).

Encode once, score many subsets at any δ:

>>> import fac_metric
>>> from fac_metric.examples import load_example
>>> space = fac_metric.get_feature_space()
>>> pool = space.encode(load_example("brown_unseen")[:40], show_progress=False)   # the only encoding
>>> anchor = space.encode(load_example("ifeval_anchor")[:100], show_progress=False)
>>> scorer = Scorer(space, threshold=1.5)
>>> anchor_profile = scorer.profile(anchor)
>>> relevant = scorer.relevant(anchor_profile)
>>> facs = [scorer.fac(scorer.profile(pool.select(range(k))), anchor_profile, relevant).fac for k in (5, 20, 40)]
>>> facs == sorted(facs) and 0 < facs[0] < facs[-1] < 1    # more texts cover more
True
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from fac_metric.errors import FacInputError, FacMismatchError, FacWarning
from fac_metric.measure.activations import SparseActivations
from fac_metric.measure.choices import COVERAGES, DEFAULT_COVERAGE, default_relevance
from fac_metric.measure.match import AnchorMatch
from fac_metric.measure.profile import FACResult, FeatureProfile, fac
from fac_metric.measure.relevance import Relevance, RelevanceSpec, select_relevant
from fac_metric.measure.threshold import Threshold, mismatch
from fac_metric.meaning.spans import TopSpans
from fac_metric.ranks import Ranks
from fac_metric.space.feature_space import FeatureSpace, get_feature_space
from fac_metric.space.tokenization import NonBlank


@dataclass
class ScoreOutput:
    """A FAC result with the profiles it was computed from (to save, merge or plot)."""

    result: FACResult
    data_profile: FeatureProfile
    anchor_profile: FeatureProfile | None
    space: FeatureSpace
    relevance: Relevance | None = None
    """How the relevant features were chosen (None without an anchor)."""
    anchor_spans: TopSpans | None = None
    """The anchor's own top spans per feature (None when the anchor came as activations or a profile)."""
    baselines: dict[str, float | None] | None = None
    """Text and embedding baselines of the same texts (:func:`fac_metric.baselines.compute_baselines`),
    when ``score(..., baselines=True)`` asked for them; None otherwise."""
    match: AnchorMatch | None = None
    """With ``coverage="match"``: each anchor text's best match (``match.per_anchor``)."""


class Scorer:
    """The measuring pipeline, its choices made and validated once, before anything is encoded.

    ``feature_space``: a ``FeatureSpace``, a folder, a Hub id or None (the embedded default);
    ``threshold``: δ (None: the space's) or a ``Threshold``; ``relevance``: a mode, feature ids
    or a :class:`~fac_metric.measure.relevance.RelevanceSpec` (None: ``all`` with match coverage,
    ``contrast`` with binary or when a ``contrast`` set is given), completed by ``relevance_options``
    (``contrast``, ``alpha``, ``generator``, ``guideline``, ``max_judged``); ``coverage``: how FAC
    is counted, ``binary`` (the paper's) or ``match`` (:mod:`fac_metric.measure.match`, which needs
    texts or activations, not saved profiles). A judge's generator is loaded here, so a bad one
    fails before minutes of encoding.
    """

    def __init__(self, feature_space: Any = None, *, threshold: float | Threshold | None = None,
                 relevance: str | Sequence[int] | RelevanceSpec | None = None,
                 coverage: str = DEFAULT_COVERAGE, cache_dir: str | os.PathLike | None = None, batch_size: int = 32,
                 show_progress: bool = True, **relevance_options: Any) -> None:
        if coverage not in COVERAGES:
            raise FacInputError(f"coverage={coverage!r} is not one of {COVERAGES}")
        self.coverage = coverage
        if relevance is None:
            relevance = default_relevance(coverage, relevance_options.get("contrast"))
        self.spec = RelevanceSpec.of(relevance, **relevance_options)
        self.judge = None
        if self.spec.mode == "judge":
            from fac_metric.llm import get_generator

            self.judge = get_generator(self.spec.generator)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise FacInputError(f"batch_size={batch_size!r} must be a positive integer")
        self.space = get_feature_space(feature_space)
        self.threshold = self.space.threshold_at(threshold)
        self.cache_dir, self.batch_size, self.show_progress = cache_dir, batch_size, show_progress
        self._contrast: FeatureProfile | None = None

    # ------------------------------------------------------------------ stages
    def profile(self, source: Any, *, name: str = "data", spans: TopSpans | None = None,
                on_chunk=None, shard: tuple[int, int] | None = None) -> FeatureProfile:
        """The profile of ``source`` at this scorer's δ: texts (strings or chats, encoded now),
        ``SparseActivations`` (or the ``.safetensors`` file they were saved to), a
        ``FeatureProfile`` or the folder of a saved one (checked: same space, same δ).
        ``spans``: filled with the texts' top spans in the same pass (texts only); ``on_chunk``:
        called with the activations as they are made (texts or activations, not profiles);
        ``shard=(rank, world)``: texts only, this process' batches (``FeatureSpace.profile``)."""
        if source is None:
            raise FacInputError(f"{name} is None: pass texts, activations or a saved profile")
        if isinstance(source, (str, os.PathLike)) and str(source).endswith(".safetensors") and Path(source).is_file():
            source = SparseActivations.load(source)
        if isinstance(source, SparseActivations):
            try:
                prof = FeatureProfile.from_activations(source, self.threshold)
            except FacMismatchError as err:
                raise FacMismatchError(f"{name}: {err}") from err
            if on_chunk is not None:
                on_chunk(source)
            return prof
        if isinstance(source, FeatureProfile) or FeatureProfile.is_saved(source):
            if on_chunk is not None:
                raise FacInputError(f"coverage='match' compares texts one by one, so it needs the {name}'s texts or "
                                    f"activations, not a profile: pass those, or coverage='binary'")
            return self._checked(source if isinstance(source, FeatureProfile) else FeatureProfile.load(source), name)
        # Blank texts have no tokens of their own: whatever they "cover" is the chat template's.
        texts = None
        try:
            texts = NonBlank(source)
            prof = self.space.profile(texts, self.threshold, spans=spans, batch_size=self.batch_size,
                                      show_progress=self.show_progress, desc=f"Profiling {name}", on_chunk=on_chunk,
                                      shard=shard)
        except FacInputError as err:
            if texts is not None and texts.dropped and not texts.kept:
                raise FacInputError(f"{name}: all {texts.dropped} texts are empty or whitespace: there is nothing "
                                    "to measure") from err
            raise FacInputError(f"{name}: {err}") from err
        if texts.dropped and (shard is None or shard[0] == 0):
            warnings.warn(f"{name}: dropped {texts.dropped} empty or whitespace-only text(s) of "
                          f"{texts.dropped + texts.kept}", FacWarning, stacklevel=3)
        return prof

    def relevant(self, anchor: FeatureProfile, *, anchor_spans: TopSpans | None = None) -> Relevance:
        """The relevant features among those ``anchor`` covers, as the spec says."""
        if self.spec.mode == "contrast" and self.spec.contrast is not None and self._contrast is None:
            self._contrast = self.profile(self.spec.contrast, name="contrast")
        return select_relevant(self.spec, anchor, background=self.space.background_profile(self.threshold),
                               contrast=self._contrast, space=self.space, generator=self.judge,
                               anchor_spans=anchor_spans, cache_dir=self.cache_dir, show_progress=self.show_progress)

    def fac(self, data: FeatureProfile, anchor: FeatureProfile | None = None,
            relevance: Relevance | None = None) -> FACResult:
        """FAC of ``data`` over ``relevance``'s features of ``anchor`` (chosen now if not given);
        without an anchor, the share of the space's live latents ``data`` covers."""
        if anchor is None:
            bg = self.space.background_profile(self.threshold)
            return fac(data, None, live=(bg.max_activation > 0) if bg is not None else None)
        chosen = relevance if relevance is not None else self.relevant(anchor)
        return fac(data, anchor, relevant=chosen.features, relevance=chosen.mode)

    def score(self, data: Any, anchor: Any = None, *, anchor_spans: int = 5, ranks: Ranks | None = None) -> ScoreOutput | None:
        """All stages: ``data`` and ``anchor`` (texts, activations or profiles) to a ``ScoreOutput``.

        ``anchor_spans`` top spans per feature are kept from the anchor pass when it is texts (for
        the judge and the report; 0 to skip). ``ranks`` (``Ranks.current()`` under ``accelerate
        launch``): every process calls this with the same arguments and encodes its share of the
        data; process 0 returns the result, equal to one process', the others None."""
        if ranks is not None and ranks.world > 1:
            return self._score_spread(data, anchor, anchor_spans, ranks)
        # Data first, so bad data fails before the anchor is encoded; match needs the anchor's
        # relevant features while it reads the data, so there the data comes second.
        data_prof = self.profile(data, name="data") if anchor is None or self.coverage == "binary" else None
        if anchor is None:
            return ScoreOutput(self.fac(data_prof), data_prof, None, self.space)
        if self.coverage == "match" and (isinstance(data, FeatureProfile) or FeatureProfile.is_saved(data)):
            self.profile(data, name="data", on_chunk=lambda _: None)  # refuses it before the anchor is encoded
        anchor_prof, chosen, heaps, anchor_acts = self._anchor_pass(anchor, anchor_spans)
        match = None
        if self.coverage == "match":
            match = AnchorMatch(anchor_acts, self.threshold, chosen.features)
            data_prof = self.profile(data, name="data", on_chunk=match.update)
        return self._output(data_prof, anchor_prof, chosen, heaps, match)

    def _anchor_pass(self, anchor: Any, anchor_spans: int):
        """The anchor's profile, its relevant features, its top spans (texts only, else None) and,
        with match coverage, its activations (else None)."""
        heaps = TopSpans.for_space(self.space, anchor_spans) if anchor_spans and _is_texts(anchor) else None
        anchor_chunks: list[SparseActivations] = []
        keep = anchor_chunks.append if self.coverage == "match" else None
        anchor_prof = self.profile(anchor, name="anchor", spans=heaps, on_chunk=keep)
        chosen = self.relevant(anchor_prof, anchor_spans=heaps)
        return anchor_prof, chosen, heaps, SparseActivations.concat(anchor_chunks) if keep else None

    def _output(self, data_prof: FeatureProfile, anchor_prof: FeatureProfile, chosen: Relevance,
                heaps: TopSpans | None, match: AnchorMatch | None) -> ScoreOutput:
        result = self.fac(data_prof, anchor_prof, chosen)
        if match is not None:
            result = self.with_match(result, match)
        return ScoreOutput(result, data_prof, anchor_prof, self.space, chosen, heaps, match=match)

    def _score_spread(self, data: Any, anchor: Any, anchor_spans: int, ranks: Ranks) -> ScoreOutput | None:
        """:meth:`score` over ``ranks.world`` processes. The anchor pass (its spans, the relevant
        features: a judge must decide once) runs on process 0 and is shared; each process then
        encodes its batches of the data into a profile and a match, merged exactly (max/sum)."""
        if not _is_texts(data):
            raise FacInputError("data must be texts to spread over processes (activations and profiles are already "
                                "encoded): score them in one process")
        shard = (ranks.rank, ranks.world)
        heaps = shared = None
        if anchor is not None:
            mine = []
            if ranks.main:  # the spans stay here: only process 0 reports
                anchor_prof, chosen, heaps, anchor_acts = self._anchor_pass(anchor, anchor_spans)
                mine = [(0, (anchor_prof, chosen, anchor_acts))]
            shared = ranks.gather(mine)[0]
        match = None
        if shared is not None and self.coverage == "match":
            match = AnchorMatch(shared[2], self.threshold, shared[1].features)
        data_prof = ranks.merged(self.profile(data, name="data", on_chunk=match.update if match else None, shard=shard))
        if match is not None:  # each anchor text's best match over every process' data
            match = ranks.merged(match)
        if data_prof.n_texts == 0:
            raise FacInputError("data: no texts to profile: pass at least one string or chat")
        if not ranks.main:
            return None
        if shared is None:
            return ScoreOutput(self.fac(data_prof), data_prof, None, self.space)
        return self._output(data_prof, shared[0], shared[1], heaps, match)

    @staticmethod
    def with_match(result: FACResult, match: AnchorMatch) -> FACResult:
        """``result`` counted by match: ``fac`` is the match value, ``binary_fac`` keeps the paper's."""
        from dataclasses import replace

        return replace(result, fac=match.value, coverage="match", binary_fac=result.fac)

    def _checked(self, prof: FeatureProfile, name: str) -> FeatureProfile:
        if prof.fingerprint != self.space.fingerprint:
            raise FacMismatchError(f"saved {name} profile was made by {mismatch(prof.fingerprint, self.space.fingerprint)}: "
                                   "re-profile it with this one")
        if prof.delta != self.threshold.delta:
            raise FacMismatchError(f"saved {name} profile was counted at δ={prof.delta}, not δ={self.threshold.delta}: "
                                   f"re-profile it (or save its activations, which any δ can count), or pass "
                                   f"threshold={prof.delta}")
        if prof.threshold != self.threshold:
            raise FacMismatchError(f"saved {name} profile was counted at {prof.threshold.differs(self.threshold)}")
        return prof


def _is_texts(source: Any) -> bool:
    return not isinstance(source, (SparseActivations, FeatureProfile, str, os.PathLike))


def score(
    data: Iterable | SparseActivations | FeatureProfile,
    anchor: Iterable | SparseActivations | FeatureProfile | str | None = None,
    *,
    feature_space: Any = None,
    threshold: float | Threshold | None = None,
    relevance: str | Sequence[int] | RelevanceSpec | None = None,
    contrast: Any = None,
    generator: Any = None,
    guideline: str | None = None,
    max_judged: int | None = None,
    alpha: float | None = None,
    anchor_spans: int = 5,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
    baselines: bool = False,
    coverage: str = DEFAULT_COVERAGE,
    ranks: Ranks | None = None,
) -> ScoreOutput | None:
    """FAC of ``data`` against ``anchor`` (texts, activations or saved profiles) in ``feature_space``.

    ``relevance`` picks F(anchor): ``contrast``, ``judge`` or ``all`` (see
    :mod:`fac_metric.measure.relevance`), a list of feature ids, or a ``RelevanceSpec``; None
    (the default): ``all`` with ``coverage="match"``, ``contrast`` with ``binary`` or a ``contrast``.
    ``contrast`` is the contrast set of ``contrast`` mode (default: the space's background);
    ``generator`` and ``guideline`` drive ``judge`` mode. ``anchor_spans`` top spans per
    feature are kept from the anchor pass, for the judge and the report (0 to skip).
    ``baselines=True`` also computes the usual text and embedding baselines of the same texts
    into ``ScoreOutput.baselines`` (needs texts, not activations or profiles, and the
    ``baselines`` extra). ``coverage``: ``match`` (the default: per anchor text, the best overlap
    with one data text, :mod:`fac_metric.measure.match`; needs texts or activations) or ``binary``
    (the paper's FAC); with ``match``, ``out.result.fac`` is the match value and
    ``out.result.binary_fac`` the share of the relevant features some data text covers.
    ``ranks=Ranks.current()`` under ``accelerate launch``: each process (all called with the same
    arguments) encodes its share of the data; process 0 gets the result, the others None.

    >>> out = score(["Write a limerick about a cat."], ["Write a poem about the sea.", "Write a story about a dog."],
    ...             show_progress=False)
    >>> 0.0 <= out.result.fac <= 1.0 and out.result.n_reference > 0
    True
    """
    embedder = None
    if baselines:
        from fac_metric.baselines import get_embedder

        # Lists, so a generator feeds both FAC and the baselines; checked and the embedder loaded
        # before any model of the pipeline, so a profile instead of texts or a missing extra fails at once.
        data = _baseline_source(data, "data")
        anchor = None if anchor is None else _baseline_source(anchor, "anchor")
        embedder = get_embedder()
    scorer = Scorer(feature_space, threshold=threshold, relevance=relevance, contrast=contrast, generator=generator,
                    guideline=guideline, max_judged=max_judged, alpha=alpha, cache_dir=cache_dir,
                    batch_size=batch_size, show_progress=show_progress, coverage=coverage)
    out = scorer.score(data, anchor, anchor_spans=anchor_spans, ranks=ranks)
    if embedder is not None and out is not None:
        from fac_metric.baselines import compute_baselines

        out.baselines = compute_baselines(data, anchor, embedder=embedder)
    return out


def _baseline_source(source: Any, name: str) -> list:
    if isinstance(source, str) and not Path(source).exists():
        raise FacInputError(f"{name} is a single string, not a list of texts or a saved profile: wrap it as [text]")
    if not _is_texts(source):
        kind = "a saved profile or activations file" if isinstance(source, (str, os.PathLike)) else \
            f"a {type(source).__name__}"
        raise FacInputError(f"baselines=True needs the {name}'s texts, but {name} is {kind}: pass the texts "
                            f"(baselines read words and sentence embeddings, not features), or baselines=False")
    try:
        return list(source)
    except TypeError as err:
        raise FacInputError(f"{name} is a {type(source).__name__}: pass a list of strings or chats") from err


__all__ = ["Scorer", "score", "ScoreOutput"]
