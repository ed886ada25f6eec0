"""Top-activating spans: for every latent, the texts where it fires hardest and where in them.

Owns: streaming a corpus through a feature space once while keeping, per latent, a bounded
"heap" of its ``k`` strongest examples (text id, activation, counted-token position, and the span
of up to ``span_tokens`` tokens ending at the peak), plus the corpus' token frequencies (what the
LLM-free explanations compare peak tokens against). Memory is ``d_sae x k`` entries and a
vocabulary-sized counter, however long the corpus is. Must not: explain or judge features
(``explain.py``, ``relevance.py``).

>>> from fac_metric.space.feature_space import FeatureSpace
>>> space = FeatureSpace.load()
>>> spans = collect_spans(space, ["The storm brought heavy rain.", "Rain fell all night."], k=2, show_progress=False)
>>> top = spans.top(int(spans.count.argmax()))    # a latent that fired on both texts
>>> len(top), top[0].activation >= top[1].activation
(2, True)
>>> top[0].span.endswith(top[0].peak_token) and top[0].peak_token != ""
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from fac_metric.errors import FacInputError

SPAN_TOKENS = 32
"""Tokens a span holds, the peak token last (the paper's span length)."""

SPAN_CHUNK = 128
"""Texts encoded and folded into the heaps at a time. 128 rather than the encoder's usual 1,024:
each chunk's (text, latent) entries and their sort are short-lived arrays of tens of MB, and with
1,024-text chunks the allocator's fragmentation stacked them up over the first few chunks (peak
growth 2.4x from 1x to 10x the text); at 128 it stays flat (docs/performance.md)."""


@dataclass(frozen=True)
class Span:
    """One top example of a latent."""

    text: int
    """Index of the text in the corpus that was streamed."""
    activation: float
    position: int
    """Counted-token position of the peak inside the text."""
    span: str
    """Up to ``SPAN_TOKENS`` tokens of the text, ending with the peak token."""
    peak: int
    """Character offset in ``span`` where the peak token starts (``span[peak:]`` is the peak token)."""
    token: int = -1
    """Token id of the peak token."""

    @property
    def peak_token(self) -> str:
        return self.span[self.peak :]

    @property
    def context(self) -> str:
        return self.span[: self.peak]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["activation"] = round(float(self.activation), 3)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Span":
        return cls(int(d["text"]), float(d["activation"]), int(d["position"]), str(d["span"]), int(d["peak"]),
                   int(d.get("token", -1)))


class TopSpans:
    """Per-latent top-``k`` examples, filled chunk by chunk (see :func:`collect_spans`).

    The heap of latent ``i`` is row ``i`` of fixed ``[d_sae, k]`` arrays, sorted by activation
    (descending; ties by text id, then position, so the result does not depend on chunking).
    """

    def __init__(self, d_sae: int, k: int, tokenizer, vocab_size: int, span_tokens: int = SPAN_TOKENS):
        if k < 1:
            raise FacInputError(f"k={k}: k must be >= 1 (the top spans kept per feature); pass k=1 or more")
        self.k = k
        self.span_tokens = span_tokens
        self.tokenizer = tokenizer
        self.values = np.full((d_sae, k), -np.inf, np.float32)
        self.texts = np.full((d_sae, k), -1, np.int64)
        self.positions = np.zeros((d_sae, k), np.int32)
        self.spans = np.full((d_sae, k), None, dtype=object)
        self.count = np.zeros(d_sae, np.int64)
        """Texts each latent fired on (activation > 0), over the whole corpus."""
        self.token_counts = np.zeros(vocab_size, np.int64)
        """How often each token id occurs among the corpus' counted tokens."""
        self.n_texts = 0
        self._seen = 0  # texts of the corpus passed so far, this process' or not: the next chunk's first id

    @classmethod
    def for_space(cls, space, k: int, span_tokens: int = SPAN_TOKENS) -> "TopSpans":
        """Empty heaps sized for ``space`` (its width and its tokenizer's vocabulary)."""
        tokenizer = space.reader.tokenizer
        return cls(space.d_sae, k, tokenizer, len(tokenizer), span_tokens)

    @property
    def d_sae(self) -> int:
        return self.values.shape[0]

    def update(self, chunk) -> None:
        """Fold one ``FeatureSpace.iter_peaks`` chunk in; text ids continue from the last chunk."""
        acts, peaks, tokens = chunk.acts, chunk.peaks, chunk.tokens
        base = self._seen
        self._seen += chunk.chunk_texts if chunk.chunk_texts is not None else acts.n_texts
        self.n_texts += acts.n_texts
        # A shard's texts are some of its chunk's: their ids are their places in the whole corpus.
        where = chunk.positions if chunk.positions is not None else np.arange(acts.n_texts)
        # One vocabulary-sized count per chunk, not one per text.
        flat = np.fromiter((t for ids in tokens for t in ids), np.int64)
        if len(flat):
            self.token_counts += np.bincount(flat, minlength=len(self.token_counts))[: len(self.token_counts)]
        self.count += np.bincount(acts.indices, minlength=self.d_sae)
        rows = np.repeat(np.arange(acts.n_texts), np.diff(acts.indptr))
        feat, val, pos = acts.indices.astype(np.int64), acts.values, peaks
        # Most candidates cannot enter a full heap: drop them before sorting anything.
        keep = val > self.values[feat, -1]
        feat, val, pos, rows = feat[keep], val[keep], pos[keep], rows[keep]
        if not len(feat):
            return
        order = np.lexsort((pos, rows, -val, feat))
        feat, val, pos, rows = feat[order], val[order], pos[order], rows[order]
        starts = np.flatnonzero(np.r_[True, feat[1:] != feat[:-1]])
        rank = np.arange(len(feat)) - np.repeat(starts, np.diff(np.r_[starts, len(feat)]))
        top = rank < self.k
        feat, val, pos, rows = feat[top], val[top], pos[top], rows[top]
        touched = np.unique(feat)
        # Merge each touched heap with its (at most k) new candidates: a [m, 2k] sort.
        m = len(touched)
        slot = np.searchsorted(touched, feat)
        new_rank = rank[top]
        cand_val = np.full((m, self.k), -np.inf, np.float32)
        cand_text = np.full((m, self.k), -1, np.int64)
        cand_pos = np.zeros((m, self.k), np.int32)
        cand_row = np.full((m, self.k), -1, np.int64)
        cand_val[slot, new_rank] = val
        cand_text[slot, new_rank] = where[rows] + base
        cand_pos[slot, new_rank] = pos
        cand_row[slot, new_rank] = rows
        all_val = np.concatenate([self.values[touched], cand_val], axis=1)
        all_text = np.concatenate([self.texts[touched], cand_text], axis=1)
        all_pos = np.concatenate([self.positions[touched], cand_pos], axis=1)
        all_row = np.concatenate([np.full((m, self.k), -1, np.int64), cand_row], axis=1)
        all_span = np.concatenate([self.spans[touched], np.full((m, self.k), None, dtype=object)], axis=1)
        # Sort each row by (-activation, text, position); empty slots (-inf) go last.
        text_key = np.where(all_text < 0, np.iinfo(np.int64).max, all_text)
        order = np.lexsort((all_pos, text_key, -all_val), axis=1)[:, : self.k]
        pick = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
        self.values[touched], self.texts[touched], self.positions[touched] = pick(all_val), pick(all_text), pick(all_pos)
        spans, new_rows = pick(all_span), pick(all_row)
        # Decode only the spans that made it into a heap.
        for r, c in zip(*np.nonzero(new_rows >= 0)):
            spans[r, c] = self._cut(tokens[new_rows[r, c]], int(self.positions[touched[r], c]))
        self.spans[touched] = spans

    def merge(self, other: "TopSpans") -> "TopSpans":
        """Both corpora's heaps together, as one pass over all their texts would fill them (the
        shards of one corpus: text ids are already the corpus'). Ties break as in ``update``."""
        if self.values.shape != other.values.shape:
            raise FacInputError("only top spans of the same width and k merge")
        text_key = lambda t: np.where(t < 0, np.iinfo(np.int64).max, t)  # noqa: E731
        all_val = np.concatenate([self.values, other.values], axis=1)
        all_text = np.concatenate([self.texts, other.texts], axis=1)
        all_pos = np.concatenate([self.positions, other.positions], axis=1)
        all_span = np.concatenate([self.spans, other.spans], axis=1)
        order = np.lexsort((all_pos, text_key(all_text), -all_val), axis=1)[:, : self.k]
        pick = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
        self.values, self.texts, self.positions, self.spans = pick(all_val), pick(all_text), pick(all_pos), pick(all_span)
        self.count = self.count + other.count
        self.token_counts = self.token_counts + other.token_counts
        self.n_texts += other.n_texts
        self._seen = max(self._seen, other._seen)
        return self

    def __getstate__(self) -> dict:
        # Sent between processes without the tokenizer (each process has its own).
        return {k: v for k, v in self.__dict__.items() if k != "tokenizer"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.tokenizer = None

    def _cut(self, ids: list[int], position: int) -> tuple[str, int, int]:
        start = max(0, position - self.span_tokens + 1)
        context = self.tokenizer.decode(ids[start:position])
        peak = self.tokenizer.decode(ids[position : position + 1])
        return context + peak, len(context), int(ids[position])

    def top(self, feature: int) -> list[Span]:
        """The latent's top examples, strongest first (fewer than ``k`` if it fired on fewer texts)."""
        out = []
        for c in range(self.k):
            if self.texts[feature, c] < 0:
                break
            span, peak, token = self.spans[feature, c]
            out.append(Span(int(self.texts[feature, c]), float(self.values[feature, c]),
                            int(self.positions[feature, c]), span, peak, token))
        return out

    def get(self, feature: int, default=None) -> list[Span] | None:
        """``top(feature)``, or ``default`` when the feature never fired (a mapping-like view)."""
        return self.top(feature) or default

    def token_frequencies(self) -> np.ndarray:
        """Share of the corpus' counted tokens that are each token id (sums to 1)."""
        total = max(int(self.token_counts.sum()), 1)
        return self.token_counts / total


def collect_spans(space, texts: Iterable, *, k: int = 20, span_tokens: int = SPAN_TOKENS, batch_size: int = 32,
                  chunk_size: int = SPAN_CHUNK, show_progress: bool = True, desc: str = "Collecting spans",
                  ranks: Any = None) -> TopSpans:
    """Stream ``texts`` through ``space`` once and keep every latent's top-``k`` spans
    (``chunk_size`` texts at a time: see :data:`SPAN_CHUNK`). ``ranks`` (a ``Ranks`` of several
    processes, all called with the same texts): each reads its batches, the heaps merge, and
    every process returns the one-process heaps."""
    heaps = TopSpans.for_space(space, k, span_tokens)
    shard = (ranks.rank, ranks.world) if ranks is not None and ranks.world > 1 else None
    for chunk in space.iter_peaks(texts, batch_size=batch_size, chunk_size=chunk_size, show_progress=show_progress,
                                  desc=desc, shard=shard):
        heaps.update(chunk)
    if shard is not None:
        heaps = ranks.merged(heaps)
        heaps.tokenizer = space.reader.tokenizer  # not sent between processes
    return heaps
