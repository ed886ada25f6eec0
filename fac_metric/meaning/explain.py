"""What a feature means, in words: LLM-free summaries from top spans, and the paper's LLM labels.

Owns: (a) ``summarize``: a short label built from a latent's top spans alone (the tokens it
peaks on, weighed against how common they are in the corpus, and the words that keep preceding
them); it needs no model and is always available; (b) ``Explainer``: the paper's two-pass LLM
explanation (explain from the top spans, "Cannot Tell" allowed; then check the explanation
against the spans), through any generator backend, cached on disk per (feature space, feature,
generator) so a killed run resumes; (c) ``add_spans``: writing spans and summaries into a
feature space's ``features.jsonl``. Must not: decide relevance (``relevance.py``).

>>> from fac_metric.meaning.spans import Span
>>> spans = [Span(0, 9.0, 5, "heavy rain", 5, 6490), Span(1, 8.0, 3, "the rain", 3, 6490),
...          Span(2, 7.5, 4, "a storm", 1, 9999)]
>>> summarize(spans)
'peaks on "rain" (2/3), "storm" (1/3)'
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from fac_metric.errors import FacInputError
from fac_metric.llm.answer_cache import cache_key, llm_cache
from fac_metric.meaning.spans import Span, TopSpans

STORED_SPANS = 10
"""Top spans written to ``features.jsonl`` per feature (the paper explains from its top 10)."""

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = frozenset(
    "the a an of to and or in on at for with by from as is are was were be been it its this that these those "
    "i you he she we they me him her us them my your his our their not no but if then so than do does did "
    "have has had will would can could should may might must shall there here what which who whom whose "
    "when where why how all any each some such only also very just about into over after before up down out".split()
)


def _norm(token: str) -> str:
    return token.strip().lower()


def summarize(spans: Sequence[Span], token_freq: np.ndarray | None = None, *, max_tokens: int = 3,
              max_words: int = 3) -> str:
    """A label from spans alone: the peak tokens most typical of the feature, and context words.

    Peak tokens are grouped case- and space-insensitively and ranked by how many spans peak on
    them, weighed by ``log(share / corpus frequency)`` when ``token_freq`` (per token id, from
    :meth:`TopSpans.token_frequencies`) is given: a feature that peaks on "rain" says more than
    one that peaks on "the". Context words are content words found before the peak in at least
    a third of the spans (and in two or more).
    """
    if not spans:
        return "never fired"
    n = len(spans)
    groups: Counter[str] = Counter()
    ids: dict[str, int] = {}
    for s in spans:
        key = _norm(s.peak_token) or repr(s.peak_token)
        groups[key] += 1
        ids.setdefault(key, s.token)

    def weight(key: str) -> float:
        share = groups[key] / n
        if token_freq is None or ids[key] < 0 or ids[key] >= len(token_freq):
            return share
        return share * max(np.log(share / max(float(token_freq[ids[key]]), 1e-7)), 0.1)

    ranked = sorted(groups, key=lambda k: (-weight(k), -groups[k], k))
    shown = [k for k in ranked if groups[k] >= 2][:max_tokens] or ranked[:1]
    if len(shown) < max_tokens:
        shown += [k for k in ranked if k not in shown][: max_tokens - len(shown)]
    label = "peaks on " + ", ".join(f'"{k}" ({groups[k]}/{n})' for k in shown)
    words: Counter[str] = Counter()
    for s in spans:
        words.update({w.lower() for w in _WORD.findall(s.context)[-8:]} - _STOP)
    common = [w for w, c in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])) if c >= max(2, n / 3) and w not in groups]
    if common:
        label += "; context: " + ", ".join(common[:max_words])
    return label


def span_facts(heaps: TopSpans, feature: int, token_freq: np.ndarray | None = None,
               n_store: int = STORED_SPANS) -> dict:
    """The ``features.jsonl`` fields for one feature: its top spans and its LLM-free summary."""
    top = heaps.top(feature)
    return {"top_spans": [s.to_dict() for s in top[:n_store]], "summary": summarize(top, token_freq),
            "corpus_firings": int(heaps.count[feature])}


def add_spans(space, heaps: TopSpans, n_store: int = STORED_SPANS) -> None:
    """Write ``heaps``' spans and summaries into ``space.facts`` (in place; ``space.save`` persists)."""
    if heaps.d_sae != space.d_sae:
        raise FacInputError(f"spans for {heaps.d_sae} latents cannot describe a space of {space.d_sae}: collect "
                            "them with this feature space")
    freq = heaps.token_frequencies()
    facts = {f["id"]: f for f in space.facts}
    space.facts = [{**facts.get(i, {"id": i}), **span_facts(heaps, i, freq, n_store)} for i in range(space.d_sae)]
    space.token_counts = heaps.token_counts


def top_spans(space, feature: int) -> list[Span]:
    """The stored top spans of ``feature`` in ``space`` (empty if the space ships none)."""
    fact = space.fact(feature)
    return [Span.from_dict(d) for d in fact.get("top_spans", [])]


# ------------------------------------------------------------------ LLM explanations (the paper's)
PROMPT_VERSION = "2"
"""Bumped when a prompt file changes meaning: cached answers from older prompts are not reused."""

_PROMPTS = Path(__file__).parent / "prompts"
CANNOT_TELL = "Cannot Tell"


def load_prompt(name: str) -> str:
    """A prompt template shipped in ``fac_metric/meaning/prompts`` (``explain``, ``check``, ``judge``)."""
    return (_PROMPTS / f"{name}.txt").read_text(encoding="utf-8")


def render_spans(spans: Sequence[Span], max_spans: int = STORED_SPANS, context_chars: int = 160) -> str:
    """Numbered fragments with the peak token marked ``[[like this]]`` (prompt text and reports)."""
    lines = []
    for n, s in enumerate(spans[:max_spans], 1):
        context = s.context[-context_chars:].replace("\n", " ")
        lines.append(f"{n}. {context}[[{s.peak_token.replace(chr(10), ' ')}]]")
    return "\n".join(lines)


def feature_spans(space, feature: int, extra: Sequence[Span] | None = None) -> list[Span]:
    """Spans to explain or judge a feature by: ``extra`` (e.g. the anchor's) first, then the stored ones."""
    return list(extra or []) + top_spans(space, feature)


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    for line in text.strip().splitlines():
        line = line.strip().strip('"').strip()
        if line.lower().startswith("explanation:"):
            line = line.split(":", 1)[1].strip()
        if line:
            return line[:200]
    return None


def _yes(generator, prompt: str, seed: int) -> bool | None:
    """A Yes/No answer: by likelihood where the backend scores, else parsed (None if neither word)."""
    if generator.supports_scoring:
        yes, no = generator.score(prompt, ["Yes", "No"])
        return yes > no
    text = generator.generate([prompt], n=1, temperature=0.0, max_new_tokens=8, seed=seed, errors="none")[0][0]
    word = re.search(r"\b(yes|no)\b", text or "", re.I)
    return None if word is None else word.group(1).lower() == "yes"


def explain_features(space, features: Iterable[int], generator, *, spans: dict[int, Sequence[Span]] | None = None,
                     cache_dir: str | os.PathLike | None = None, max_new_tokens: int = 32, seed: int = 0,
                     show_progress: bool = False) -> dict[int, dict]:
    """The paper's two passes for each feature: explain from its top spans, then check the label.

    Returns ``{feature: {"explanation", "verified", "source"}}``; "Cannot Tell" and unanswered
    requests are kept as such (``verified`` False), never guessed. Answers are cached per
    (feature space, feature, generator, prompt), so a rerun asks nothing twice.
    """
    from tqdm.auto import tqdm

    store = llm_cache(space, cache_dir)
    explain_t, check_t = load_prompt("explain"), load_prompt("check")
    out: dict[int, dict] = {}
    for f in tqdm(list(features), desc="Explaining", disable=not show_progress):
        shown = feature_spans(space, f, (spans or {}).get(f))[:STORED_SPANS]
        if not shown:
            out[f] = {"explanation": CANNOT_TELL, "verified": False, "source": "no spans"}
            continue
        prompt = explain_t.format(spans=render_spans(shown))
        key = cache_key("explain", PROMPT_VERSION, generator.name, f, prompt)
        label = store.get(key)
        if label is None:
            label = _explain_one(generator, prompt, check_t, shown, max_new_tokens, seed)
            if label["answered"]:  # a server that failed is asked again next run
                store.put(key, label)
        out[f] = {**label, "source": generator.name}
    return out


def _explain_one(generator, prompt: str, check_template: str, shown: Sequence[Span], max_new_tokens: int,
                 seed: int) -> dict:
    text = generator.generate([prompt], n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed,
                              errors="none")[0][0]
    label = _first_line(text)
    verified = None
    if label and CANNOT_TELL.lower() not in label.lower():
        verified = _yes(generator, check_template.format(spans=render_spans(shown), explanation=label), seed)
    return {"explanation": label or CANNOT_TELL, "verified": bool(verified), "answered": text is not None}
