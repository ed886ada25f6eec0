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

Must not: compute FAC (``profile.fac``) or run the feature space.

>>> import numpy as np
>>> from fac_metric.profile import FeatureProfile
>>> thr = np.ones(3, np.float32)
>>> anchor = FeatureProfile(np.full(3, 5.0, np.float32), np.array([40, 10, 0]), thr, 1.0, "fp", n_texts=50)
>>> background = FeatureProfile(np.full(3, 5.0, np.float32), np.array([5, 45, 2]), thr, 1.0, "fp", n_texts=100)
>>> contrast_features(anchor, background).features.tolist()    # 80% vs 5%: enriched; 20% vs 45%: not
[0]
>>> all_features(anchor, background).features.tolist()
[0, 1]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FacInputError
from .profile import FeatureProfile

RELEVANCE_MODES = ("contrast", "judge", "all")
DEFAULT_RELEVANCE = "contrast"
DEFAULT_ALPHA = 0.05
"""False-discovery rate of the contrast test."""
GENERIC_FRACTION = 0.5
"""A feature active on more than this share of background texts is generic (``all`` mode)."""
FEW_RELEVANT = 50
"""Below this many relevant features FAC moves in coarse steps and saturates quickly: say so."""
DECISIONS = ("Yes", "Probably", "Maybe", "No")
RELEVANT_DECISIONS = frozenset(DECISIONS[:3])
DEFAULT_MAX_JUDGED = 200

_GUIDELINES = Path(__file__).parent / "guidelines"
_DECISION = re.compile(r"final\s+decision\s*:?\s*\[\[\s*(yes|probably|maybe|no)\s*\]\]", re.I)


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
    elif len(ids) < FEW_RELEVANT:
        warning = (f"only {len(ids)} relevant features ({mode}): FAC moves in steps of 1/{max(len(ids), 1)} and "
                   "saturates quickly; use more anchor texts, or relevance='all'")
    return Relevance(mode, ids, n_candidates, details, per_feature, warning)


def _shares(prof: FeatureProfile) -> np.ndarray:
    return prof.count / max(prof.n_texts, 1)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values (BH-adjusted p-values) for ``p``, same order.

    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, float)
    if not len(p):
        return p
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(q)
    out[order] = q
    return out


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


def load_guideline(guideline: str | None) -> tuple[str, str]:
    """``(name, text)`` of a shipped guideline (``toxicity``, ``helpfulness``,
    ``instruction_following``, ``sycophancy``) or of a user's own text."""
    if guideline is None:
        raise FacInputError(f"relevance='judge' needs a guideline: one of {shipped_guidelines()} or your own text")
    if not isinstance(guideline, str) or not guideline.strip():
        raise FacInputError(f"guideline must be a shipped name {shipped_guidelines()} or a sentence describing the task")
    key = guideline.strip().lower().replace("-", "_").replace(" ", "_")
    path = _GUIDELINES / f"{key}.txt"
    if path.is_file():
        return key, path.read_text(encoding="utf-8").strip()
    if len(guideline.split()) < 4:
        raise FacInputError(f"unknown guideline {guideline!r}: use one of {shipped_guidelines()} or describe the "
                            "task in a sentence or more")
    return "custom", guideline.strip()


def shipped_guidelines() -> list[str]:
    return sorted(p.stem for p in _GUIDELINES.glob("*.txt"))


def parse_decision(text: str | None) -> str | None:
    """The decision in ``Final Decision: [[...]]`` (last one wins), or None.

    >>> parse_decision("The feature is about rain. Final Decision: [[probably]]")
    'Probably'
    """
    found = _DECISION.findall(text or "")
    return found[-1].capitalize() if found else None


def judge_features(anchor: FeatureProfile, background: FeatureProfile | None, space, generator, guideline: str, *,
                   max_judged: int | None = DEFAULT_MAX_JUDGED, anchor_spans: dict | None = None,
                   explanations: dict[int, str] | None = None, retries: int = 2, max_new_tokens: int = 64,
                   cache_dir=None, seed: int = 0, show_progress: bool = False) -> Relevance:
    """The paper's LLM judge over the anchor's top ``max_judged`` non-generic features.

    Candidates are ranked by how many anchor texts they fire on; features past ``max_judged``
    are not judged and not relevant. Each judgment is cached (feature space, feature,
    generator, prompt), so a rerun or a resumed run asks nothing twice.
    """
    from tqdm.auto import tqdm

    from .explain import PROMPT_VERSION, cache_key, feature_spans, llm_cache, load_prompt, render_spans

    name, text = load_guideline(guideline)
    pool = all_features(anchor, background).features
    pool = pool[np.lexsort((pool, -anchor.count[pool]))]
    judged = pool if max_judged is None else pool[: max(int(max_judged), 0)]
    store = llm_cache(space, cache_dir)
    template = load_prompt("judge")
    decisions: dict[int, dict] = {}
    for f in tqdm(judged.tolist(), desc="Judging", disable=not show_progress):
        spans = feature_spans(space, f, (anchor_spans or {}).get(f))
        explanation = (explanations or {}).get(f) or space.fact(f).get("summary") or "(no explanation)"
        prompt = template.format(guideline=text, explanation=explanation, spans=render_spans(spans) or "(none)")
        key = cache_key("judge", PROMPT_VERSION, generator.name, f, prompt)
        decision = store.get(key)
        if decision is None:
            decision = _judge_one(generator, prompt, retries, max_new_tokens, seed + f)
            if decision["how"] != "no answer":  # a server that failed is asked again next run
                store.put(key, decision)
        decisions[f] = decision
    mask = np.zeros(anchor.d_sae, bool)
    for f, d in decisions.items():
        mask[f] = d["decision"] in RELEVANT_DECISIONS
    answered = sum(d["decision"] != "unknown" for d in decisions.values())
    details = {"guideline": name, "generator": generator.name, "n_judged": len(decisions),
               "n_not_judged": int(len(pool) - len(judged)), "n_unknown": len(decisions) - answered,
               "parse_rate": (answered / len(decisions)) if decisions else None,
               "by_decision": {k: sum(d["decision"] == k for d in decisions.values()) for k in (*DECISIONS, "unknown")}}
    return _finish("judge", mask, len(pool), details, decisions)


_REMINDER = "Reply with only your decision, exactly in this form: Final Decision: [[Yes]] (or [[Probably]], [[Maybe]], [[No]])."


def _judge_one(generator, prompt: str, retries: int, max_new_tokens: int, seed: int) -> dict:
    if generator.supports_scoring:
        scores = generator.score(prompt, [f"Final Decision: [[{d}]]" for d in DECISIONS])
        best = int(np.argmax(scores))
        return {"decision": DECISIONS[best], "how": "likelihood", "scores": [round(float(s), 3) for s in scores]}
    chat: list[dict] = [{"role": "user", "content": prompt}]
    text = None
    for attempt in range(retries + 1):
        # The first answer is greedy. A retry shows the model its unparseable answer and asks for the
        # format alone (small models ramble); later retries sample, so an answer is not just repeated.
        text = generator.generate([chat], n=1, temperature=0.0 if attempt < 2 else 0.7,
                                  max_new_tokens=max_new_tokens, seed=seed * 31 + attempt, errors="none")[0][0]
        decision = parse_decision(text)
        if decision is not None:
            return {"decision": decision, "how": "parsed", "attempts": attempt + 1}
        if text:
            chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": text},
                    {"role": "user", "content": _REMINDER}]
    how = "unparseable" if text is not None else "no answer"
    return {"decision": "unknown", "how": how, "attempts": retries + 1, "last": (text or "")[-200:]}


def select_relevant(mode: str, anchor: FeatureProfile, *, background: FeatureProfile | None = None,
                    contrast: FeatureProfile | None = None, space=None, generator=None, guideline: str | None = None,
                    max_judged: int | None = DEFAULT_MAX_JUDGED, alpha: float = DEFAULT_ALPHA,
                    anchor_spans: dict | None = None, cache_dir=None, show_progress: bool = False) -> Relevance:
    """Dispatch on ``mode`` (one of :data:`RELEVANCE_MODES`)."""
    if mode == "contrast":
        against = contrast if contrast is not None else background
        if against is None:
            raise FacInputError("relevance='contrast' needs a contrast set: this feature space ships no background, "
                                "so pass contrast=<texts or a saved profile>, or use relevance='all'")
        return contrast_features(anchor, against, alpha=alpha)
    if mode == "all":
        return all_features(anchor, background)
    if mode == "judge":
        if generator is None or space is None:
            raise FacInputError("relevance='judge' needs a generator (e.g. 'local' or 'http://127.0.0.1:8000/v1')")
        return judge_features(anchor, background, space, generator, guideline, max_judged=max_judged,
                              anchor_spans=anchor_spans, cache_dir=cache_dir, show_progress=show_progress)
    raise FacInputError(f"relevance={mode!r} is not one of {RELEVANCE_MODES}")
