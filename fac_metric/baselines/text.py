"""Text-diversity baselines on words: distinct-n, n-gram entropy and self-BLEU, in pure Python.

Owns: the word tokeniser every text baseline shares (lowercased words and single punctuation
marks) and the three measures over a set of strings. Must not: import torch or numpy (it needs
no extra), or read chats (``compute.py`` turns them into strings first).

>>> tokens(" Hello, World! ")
['hello', ',', 'world', '!']
>>> distinct_n(["a b a b", "a b c"], 2)   # bigrams ab ba ab | ab bc: 3 distinct of 5
0.6
>>> self_bleu(["the cat sat on the mat", "the cat sat on the mat"])   # each text copies the other
1.0
>>> round(self_bleu(["the cat sat", "the cat sat"]), 4)   # no 4-gram: p4 = 0.1 / 1, BLEU = 0.1 ** (1 / 4)
0.5623
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Any, Sequence

from fac_metric.errors import FacInputError

_TOKEN = re.compile(r"\w+|[^\w\s]")
SMOOTHING_EPSILON = 0.1
"""What a zero n-gram match count becomes in self-BLEU (NLTK's ``SmoothingFunction().method1``)."""


def tokens(text: str) -> list[str]:
    """The words (runs of letters, digits, ``_``) and punctuation marks of ``text``, lowercased."""
    return _TOKEN.findall(text.lower())


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of one token list, in order (none when it is shorter than ``n``).

    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    """
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` as a list of strings, or a one-line error saying what to pass instead."""
    if isinstance(texts, (str, bytes)) or texts is None:
        raise FacInputError(f"{name} must be a list of strings, got {type(texts).__name__}: wrap a single text as [text]")
    texts = list(texts)
    if not texts:
        raise FacInputError(f"{name} is empty: pass at least one text")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise FacInputError(f"{name}[{i}] is a {type(t).__name__}, not a string: {str(t)[:60]!r}")
    return texts


def _check_n(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FacInputError(f"{name}={n!r} must be a positive integer")
    return n


def _set_counts(texts: Sequence[str], n: int) -> Counter:
    # n-grams never span two texts: a text's end and the next one's start are not a phrase.
    counts: Counter = Counter()
    for t in texts:
        counts.update(ngrams(tokens(t), n))
    return counts


def distinct_n(texts: Sequence[str], n: int = 1) -> float:
    """Distinct n-grams over all n-grams of the set (Li et al. 2016); NaN when it has no n-gram."""
    counts = _set_counts(check_texts(texts), _check_n(n))
    total = sum(counts.values())
    return len(counts) / total if total else math.nan


def ngram_entropy(texts: Sequence[str], n: int = 2) -> float:
    """Shannon entropy, in bits, of the set's n-gram distribution; NaN when it has no n-gram.

    >>> ngram_entropy(["a b", "c d"])   # two bigrams, once each: one bit
    1.0
    """
    counts = _set_counts(check_texts(texts), _check_n(n))
    total = sum(counts.values())
    if not total:
        return math.nan
    return -math.fsum(c / total * math.log2(c / total) for c in counts.values()) + 0.0  # no -0.0


class _Others:
    """For every n-gram: its largest count in any text, which text holds it, and the second largest.

    The largest count among all texts but ``h`` is then the second largest when ``h`` holds the
    largest, else the largest: one dictionary look-up instead of a pass over the other texts.
    """

    def __init__(self, per_text: list[Counter]) -> None:
        self.best: dict[tuple, int] = {}
        self.holder: dict[tuple, int] = {}
        self.second: dict[tuple, int] = {}
        for i, counts in enumerate(per_text):
            for gram, c in counts.items():
                top = self.best.get(gram, 0)
                if c > top:
                    self.second[gram], self.best[gram], self.holder[gram] = top, c, i
                elif c > self.second.get(gram, 0):
                    self.second[gram] = c  # a tie with the holder lands here: the others hold it too

    def max_without(self, gram: tuple, h: int) -> int:
        return self.second.get(gram, 0) if self.holder[gram] == h else self.best[gram]


def _closest_other_length(lengths: list[int], c: int) -> int:
    """NLTK's closest reference length, over every length but one occurrence of ``c`` (the
    hypothesis's own): the nearest to ``c``, the shorter on a tie. ``lengths`` is sorted."""
    lo, hi = bisect_left(lengths, c), bisect_right(lengths, c)
    if hi - lo >= 2:
        return c
    candidates = ([lengths[lo - 1]] if lo > 0 else []) + ([lengths[hi]] if hi < len(lengths) else [])
    return min(candidates, key=lambda r: (abs(r - c), r))


def self_bleu(texts: Sequence[str], max_n: int = 4, max_texts: int = 500, seed: int = 0) -> float:
    """Self-BLEU (Zhu et al. 2018, Texygen): mean BLEU of each text against all the others.

    Per hypothesis, as NLTK's ``sentence_bleu`` with uniform weights over 1..``max_n`` and
    ``SmoothingFunction().method1``: modified n-gram precision clipped by the largest count in
    any other text, a zero match count replaced by ``SMOOTHING_EPSILON``, brevity penalty
    against the closest other length, and 0 when no unigram matches. At most ``max_texts``
    hypotheses (a sample seeded by ``seed``), always against every other text; texts without a
    token are no hypothesis but stay references. Higher means less diverse. NaN with fewer than
    2 texts or no non-empty one.

    >>> round(self_bleu(["a b c d", "a b c e"], max_n=2), 4)   # p1 = 3/4, p2 = 2/3
    0.7071
    """
    texts = check_texts(texts)
    max_n = _check_n(max_n, "max_n")
    max_texts = _check_n(max_texts, "max_texts")
    words = [tokens(t) for t in texts]
    hypotheses = [i for i, w in enumerate(words) if w]
    if len(texts) < 2 or not hypotheses:
        return math.nan
    if len(hypotheses) > max_texts:
        hypotheses = sorted(random.Random(seed).sample(hypotheses, max_texts))
    per_order = []
    for n in range(1, max_n + 1):
        per_text = [Counter(ngrams(w, n)) for w in words]
        per_order.append((per_text, _Others(per_text)))
    lengths = sorted(len(w) for w in words)
    weight = 1.0 / max_n  # Texygen's uniform weights, (1 / max_n,) * max_n
    scores = []
    for h in hypotheses:
        log_p = []
        for per_text, others in per_order:
            counts = per_text[h]
            matched = sum(min(c, others.max_without(g, h)) for g, c in counts.items())
            total = max(1, sum(counts.values()))  # NLTK's denominator: 1 when the text is shorter than n
            if not log_p and matched == 0:
                break  # no unigram in common: BLEU is 0, smoothing or not
            log_p.append(math.log((matched or SMOOTHING_EPSILON) / total))
        if len(log_p) < max_n:
            scores.append(0.0)
            continue
        c, r = len(words[h]), _closest_other_length(lengths, len(words[h]))
        brevity = 1.0 if c > r else math.exp(1 - r / c)
        scores.append(brevity * math.exp(math.fsum(weight * lp for lp in log_p)))
    return math.fsum(scores) / len(scores)


__all__ = ["tokens", "ngrams", "check_texts", "distinct_n", "ngram_entropy", "self_bleu", "SMOOTHING_EPSILON"]
