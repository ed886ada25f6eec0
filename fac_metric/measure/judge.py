"""The paper's LLM judge: is a feature relevant to the task a guideline describes?

Owns: the shipped task guidelines (``guidelines/``), reading the judge's decision, and judging
the anchor's candidate features one by one, each judgment cached by (feature space, feature,
generator, prompt). A local backend answers by comparing the likelihood of the four decisions
(nothing to parse); an HTTP backend's text is parsed, unparseable answers are retried and then
recorded as unknown. Must not: choose the generator (it is given one) or run the feature space.
"""

from __future__ import annotations

import re

import numpy as np

from fac_metric.errors import FacInputError
from fac_metric.measure.profile import FeatureProfile
from fac_metric.measure.choices import DEFAULT_MAX_JUDGED, GUIDELINES_DIR, shipped_guidelines
from fac_metric.measure.relevance import Relevance, _finish, all_features

DECISIONS = ("Yes", "Probably", "Maybe", "No")
RELEVANT_DECISIONS = frozenset(DECISIONS[:3])

_DECISION = re.compile(r"final\s+decision\s*:?\s*\[\[\s*(yes|probably|maybe|no)\s*\]\]", re.I)


def load_guideline(guideline: str | None) -> tuple[str, str]:
    """``(name, text)`` of a shipped guideline (``toxicity``, ``helpfulness``,
    ``instruction_following``, ``sycophancy``) or of a user's own text."""
    if guideline is None:
        raise FacInputError(f"relevance='judge' needs a guideline: one of {shipped_guidelines()} or your own text")
    if not isinstance(guideline, str) or not guideline.strip():
        raise FacInputError(f"guideline must be a shipped name {shipped_guidelines()} or a sentence describing the task")
    key = guideline.strip().lower().replace("-", "_").replace(" ", "_")
    path = GUIDELINES_DIR / f"{key}.txt"
    if path.is_file():
        return key, path.read_text(encoding="utf-8").strip()
    if len(guideline.split()) < 4:
        raise FacInputError(f"unknown guideline {guideline!r}: use one of {shipped_guidelines()} or describe the "
                            "task in a sentence or more")
    return "custom", guideline.strip()


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

    from fac_metric.llm import cache_key, llm_cache
    from fac_metric.meaning.explain import PROMPT_VERSION, feature_spans, load_prompt, render_spans

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




__all__ = ["judge_features", "load_guideline", "shipped_guidelines", "parse_decision", "DECISIONS",
           "RELEVANT_DECISIONS"]
