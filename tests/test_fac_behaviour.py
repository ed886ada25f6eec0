"""FAC behaves as a coverage measure on real text with the committed default SAE.

The paper's binary FAC over a saved anchor profile (its properties as a coverage ratio); the
default match FAC's are in tests/test_match.py (it needs the anchor's texts)."""

import json
from pathlib import Path

import numpy as np
import pytest

from fac_metric.scoring import score


@pytest.fixture(scope="module")
def anchor_profile(anchor_scored):
    return anchor_scored.anchor_profile  # the 300 IFEval prompts, encoded once per session


def fac_of(space, texts, anchor_profile):
    return score(texts, anchor_profile, feature_space=space, show_progress=False, coverage="binary").result.fac


def test_data_from_the_anchor_distribution_scores_higher_than_unrelated_data(space, anchor_profile, heldout_texts, brown_texts):
    same_task = fac_of(space, heldout_texts[:60], anchor_profile)
    unrelated = fac_of(space, brown_texts[:60], anchor_profile)
    assert same_task > unrelated + 0.1, (same_task, unrelated)


def test_adding_texts_never_lowers_fac(space, anchor_profile, heldout_texts, brown_texts):
    pool = heldout_texts[:40] + brown_texts[:20]
    values = [fac_of(space, pool[:n], anchor_profile) for n in (5, 15, 30, 60)]
    assert all(b >= a for a, b in zip(values, values[1:])), values
    assert values[-1] > values[0]


def test_duplicating_texts_never_raises_fac(space, anchor_profile, heldout_texts):
    once = fac_of(space, heldout_texts[:25], anchor_profile)
    assert fac_of(space, heldout_texts[:25] * 3, anchor_profile) == once


def test_a_small_sample_of_the_anchor_does_not_saturate(space, anchor_profile, anchor_texts, heldout_texts):
    ten = fac_of(space, anchor_texts[:10], anchor_profile)
    sixty = fac_of(space, heldout_texts[:60], anchor_profile)
    assert 0 < ten < 0.8 and ten < sixty - 0.15, (ten, sixty)


def test_paraphrases_share_more_active_features_than_unrelated_pairs(space):
    rows = [json.loads(line) for line in (Path(__file__).parent / "data/paraphrases.jsonl").read_text().splitlines()]
    acts = space.encode([r["a"] for r in rows] + [r["b"] for r in rows], show_progress=False)
    thr = space.threshold.per_latent
    active = [set(ids[vals > thr[ids]]) for ids, vals in (acts.row(i) for i in range(acts.n_texts))]
    n = len(rows)

    def jaccard(i, j):
        return len(active[i] & active[j]) / len(active[i] | active[j])

    paraphrase = np.array([jaccard(i, n + i) for i in range(n)])
    unrelated = np.array([jaccard(i, n + (i + 1) % n) for i in range(n)])
    assert paraphrase.mean() > 1.5 * unrelated.mean(), (paraphrase.mean(), unrelated.mean())
    assert (paraphrase > unrelated).mean() >= 0.8
