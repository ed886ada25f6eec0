"""What the relevant features are, and whether they look like the task or only like its form.

Owns: the table of relevant features a report and the evaluate result show (label, how often
the anchor and the contrast fire each, the test's q-value or the judge's decision), and the
*form* check: a feature whose top spans mostly peak on punctuation or function words ("?",
"what", "you", "help") measures how a text is phrased, not what it is about. When most relevant
features are like that, FAC measures the prompt form of the anchor (the validity study found
exactly this when a set of harmful questions was contrasted with prose), so the result says so.
Must not: choose features (``measure.relevance`` does) or compute FAC.

>>> is_form_token(" What"), is_form_token("?"), is_form_token(" weapons")
(True, True, False)
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

FORM_WORDS = frozenset("""
a an the and or but if so of to in on at for with from by about as than then that this these those
i me my you your we our us he she it its they them their there here
what how why who whom whose where when which whether can could would should will shall may might must
do does did is are was were be been being have has had not no yes
please help tell explain give write make let know want need like just
""".split())
"""Function words and request verbs: what every prompt shares whatever it asks."""
FORM_SHARE = 0.5
"""A feature is form-like when at least this share of its top spans peak on a form token; the
relevant set looks like form when at least this share of its features are."""


def is_form_token(token: str) -> bool:
    """Punctuation, digits, whitespace or a :data:`FORM_WORDS` word."""
    t = token.strip().lower()
    return not t or all(ch in string.punctuation or ch.isdigit() for ch in t) or t in FORM_WORDS


def _peak_tokens(space, feature: int) -> list[str]:
    spans = (space.fact(feature) or {}).get("top_spans") or []
    ids = [s["token"] for s in spans if isinstance(s.get("token"), int)]
    tok = space.reader.tokenizer
    return [tok.decode([i]) for i in ids]


def feature_is_form(space, feature: int) -> bool | None:
    """Whether ``feature``'s top spans mostly peak on form tokens (None: the space has no spans)."""
    peaks = _peak_tokens(space, feature)
    if not peaks:
        return None
    return sum(map(is_form_token, peaks)) >= FORM_SHARE * len(peaks)


def relevant_table(out: Any, n: int | None = 20) -> list[dict]:
    """The relevant features of a ``ScoreOutput``, the anchor's most frequent first (``n`` of
    them; None: all): id, label, anchor share, contrast share, q-value or decision, form-like."""
    if out.relevance is None or out.anchor_profile is None:
        return []
    ids = np.asarray(out.relevance.features, np.int64)
    anchor = out.anchor_profile
    ids = ids[np.lexsort((ids, -anchor.count[ids]))][: (len(ids) if n is None else n)]
    rows = []
    for i in ids.tolist():
        per = out.relevance.per_feature.get(i, {})
        fact = out.space.fact(i) or {}
        rows.append({
            "feature": i, "label": fact.get("label") or fact.get("summary"),
            "anchor_share": round(float(anchor.count[i] / max(anchor.n_texts, 1)), 4),
            "contrast_share": round(per["contrast_share"], 4) if "contrast_share" in per else None,
            **({"q_value": per["q"]} if "q" in per else {}),
            **({"decision": per["decision"]} if "decision" in per else {}),
            "form": feature_is_form(out.space, i),
        })
    return rows


def form_warning(out: Any) -> str | None:
    """A warning when most relevant features look like phrasing rather than content, else None.

    Only for relevance that is meant to isolate the task (contrast, judge, given ids): ``all``
    keeps every non-generic anchor feature, form included, by design (match coverage compares
    whole profiles, and that predicted best in docs/results.md)."""
    if out.relevance is None or not len(out.relevance.features) or out.relevance.mode == "all":
        return None
    flags = [feature_is_form(out.space, int(i)) for i in out.relevance.features]
    known = [f for f in flags if f is not None]
    if not known or sum(known) < FORM_SHARE * len(known):
        return None
    return (f"{sum(known)} of {len(known)} relevant features peak mostly on punctuation or function words "
            "(e.g. '?', 'what', 'you'): FAC may be measuring how the anchor is phrased, not what it is about. "
            "Contrast with texts of the same form (contrast= your negatives, or prompts of another task), "
            "or use relevance='judge'")


def measurement_result(out: Any, n_missing: int = 100) -> dict:
    """The result dict of the evaluate module for a ``ScoreOutput`` (``n_missing`` < 0: every
    missing feature): the module's ``compute()`` and the Space app both build it here, so the page
    shows exactly what ``compute()`` returns."""
    r = out.result
    result = {
        "fac": r.fac,
        "binary_fac": r.binary_fac,
        "coverage": r.coverage,
        "n_covered": r.n_covered,
        "n_relevant": r.n_reference,
        "missing_features": r.missing if n_missing < 0 else r.missing[:n_missing],
        "threshold": r.threshold,
        "relevance": r.relevance,
        "relevance_warning": out.relevance.warning if out.relevance is not None else None,
        "relevant_features": relevant_table(out),
        "form_warning": form_warning(out),
    }
    if out.baselines is not None:
        result["baselines"] = out.baselines
    return result


__all__ = ["measurement_result", "relevant_table", "form_warning", "feature_is_form", "is_form_token", "FORM_WORDS", "FORM_SHARE"]
