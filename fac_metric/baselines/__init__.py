"""Baselines: the text-diversity and embedding measures users already compute, beside FAC.

Owns: the word tokeniser and the text measures (distinct-n, n-gram entropy, self-BLEU; pure
Python), the sentence embedder (all-MiniLM-L6-v2 from its package, on the CPU, once per process)
and the embedding measures (mean cosine distance, Vendi score, and against an anchor cluster and
soft coverage), and ``compute_baselines``, all of them on the texts FAC reads. Must not: compute
FAC, encode with the feature space or download models; the embedding measures need the
``baselines`` extra (``pip install "fac-metric[baselines]"``), the text measures nothing.

>>> from fac_metric.baselines import distinct_n
>>> distinct_n(["a b a b", "a b c"], 1)   # a b c of 7 words
0.42857142857142855
"""

from fac_metric._lazy import lazy_names

_TX = "fac_metric.baselines.text"
_EM = "fac_metric.baselines.embedding"
_CO = "fac_metric.baselines.compute"
__getattr__, __dir__ = lazy_names(__name__, {
    "tokens": _TX, "ngrams": _TX, "distinct_n": _TX, "ngram_entropy": _TX, "self_bleu": _TX,
    "SentenceEmbedder": _EM, "get_embedder": _EM, "mean_cosine_distance": _EM, "vendi_score": _EM,
    "cluster_coverage": _EM, "soft_coverage": _EM, "INSTALL_HINT": _EM,
    "compute_baselines": _CO, "baseline_texts": _CO, "BASELINE_KEYS": _CO, "BASELINE_DEFINITIONS": _CO,
    "ANCHOR_KEYS": _CO,
})
__all__ = sorted(__dir__())
