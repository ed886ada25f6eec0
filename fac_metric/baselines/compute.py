"""Every baseline of a dataset (and its anchor) in one call, on the texts FAC reads.

Owns: turning strings and chats into the strings baselines read, the keys and one-line
definitions of the baselines, and :func:`compute_baselines`. Must not: compute FAC or encode
with the feature space (``fac_metric.score(..., baselines=True)`` puts both side by side).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from fac_metric.baselines.embedding import (SentenceEmbedder, cluster_coverage, get_embedder, mean_cosine_distance,
                                            soft_coverage, vendi_score)
from fac_metric.baselines.text import distinct_n, ngram_entropy, self_bleu
from fac_metric.errors import FacInputError

BASELINE_DEFINITIONS: dict[str, str] = {
    "distinct_1": "distinct words / words in the set",
    "distinct_2": "distinct word bigrams / word bigrams in the set",
    "ngram_entropy_2": "Shannon entropy (bits) of the set's word-bigram distribution",
    "self_bleu": "mean BLEU-4 of each text against all the others (Texygen; lower = more diverse)",
    "mean_cosine_distance": "mean 1 - cosine between two texts' MiniLM embeddings",
    "vendi": "Vendi score of the MiniLM embeddings: the effective number of distinct texts",
    "cluster_coverage": "share of the anchor's k-means clusters (MiniLM) that some data text falls in",
    "soft_coverage": "mean over anchor texts of the best cosine similarity to a data text (MiniLM)",
}
"""What each key of :func:`compute_baselines` means, in one line."""
BASELINE_KEYS = tuple(BASELINE_DEFINITIONS)
ANCHOR_KEYS = ("cluster_coverage", "soft_coverage")
"""The keys that need an anchor."""


def baseline_text(item: Any, index: int = 0, name: str = "data") -> str:
    """The string baselines read for one item: a string as it is, a chat's message contents.

    >>> baseline_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    'Hi\\nHello!'
    """
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)) and item and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in item):
        # Only message contents: the same words FAC reads, without the chat template's scaffolding
        # (which every chat shares, and which would make any set of chats look alike).
        return "\n".join(m["content"] for m in item)
    raise FacInputError(f"{name}[{index}] is a {type(item).__name__}, not a string or a list of "
                        f"{{'role', 'content'}} messages: {str(item)[:60]!r}")


def baseline_texts(items: Iterable, name: str = "data") -> list[str]:
    """:func:`baseline_text` of every item; refuses ``None``, a bare string and an empty set."""
    if items is None or isinstance(items, (str, bytes)):
        raise FacInputError(f"{name} must be a list of strings or chats, got {type(items).__name__}: "
                            "wrap a single text as [text]")
    texts = [baseline_text(item, i, name) for i, item in enumerate(items)]
    if not texts:
        raise FacInputError(f"{name} is empty: pass at least one string or chat")
    return texts


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def compute_baselines(data: Iterable, anchor: Iterable | None = None, *, embedder: SentenceEmbedder | None = None,
                      n_clusters: int = 32, seed: int = 0) -> dict[str, float | None]:
    """The text and embedding baselines of ``data`` (strings or chats), and with ``anchor`` the
    anchor-aware ones, keyed as :data:`BASELINE_KEYS` (the last two only with an anchor).

    A value is ``None`` where the measure is undefined: self-BLEU and mean cosine distance of a
    single text, distinct-n or entropy of texts with no n-gram. ``seed`` fixes the self-BLEU
    sample and the k-means start; the same inputs and seed give the same numbers.

    >>> out = compute_baselines(["The cat sat.", "A dog ran home.", "The cat sat down."], ["A cat.", "Stocks fell."])
    >>> list(out) == list(BASELINE_KEYS), out["distinct_1"]   # 9 distinct of 14 words
    (True, 0.6428571428571429)
    """
    texts = baseline_texts(data, "data")
    anchor_texts = None if anchor is None else baseline_texts(anchor, "anchor")
    embedder = embedder if embedder is not None else get_embedder()
    E = embedder.embed(texts)
    out = {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "ngram_entropy_2": ngram_entropy(texts, 2),
        "self_bleu": self_bleu(texts, seed=seed),
        "mean_cosine_distance": mean_cosine_distance(E),
        "vendi": vendi_score(E),
    }
    if anchor_texts is not None:
        A = embedder.embed(anchor_texts)
        out["cluster_coverage"] = cluster_coverage(E, A, n_clusters=n_clusters, seed=seed)
        out["soft_coverage"] = soft_coverage(E, A)
    return {key: _number(value) for key, value in out.items()}


__all__ = ["compute_baselines", "baseline_text", "baseline_texts", "BASELINE_DEFINITIONS", "BASELINE_KEYS",
           "ANCHOR_KEYS"]
