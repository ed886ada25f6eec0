"""Relevance modes on real profiles: the contrast test, the LLM judge (local and HTTP), and `all`."""

import json

import numpy as np
import pytest
from scipy.stats import fisher_exact

from fac_metric.errors import FacInputError
from fac_metric.llm import HTTPGenerator
from fac_metric.measure.judge import judge_features, load_guideline
from fac_metric.measure.relevance import (
    FEW_RELEVANT,
    RelevanceSpec,
    all_features,
    benjamini_hochberg,
    contrast_features,
    select_relevant,
)
from tests.servers import completion_body


@pytest.fixture(scope="module")
def anchor(anchor_scored):
    return anchor_scored.anchor_profile


@pytest.fixture(scope="module")
def background(space):
    return space.background_profile()


def test_contrast_keeps_features_the_anchor_fires_significantly_more_often(anchor, background):
    rel = contrast_features(anchor, background, alpha=0.05)
    assert rel.mode == "contrast" and FEW_RELEVANT < rel.n_relevant < rel.n_candidates == int(anchor.active.sum())
    assert rel.warning is None
    a_share, b_share = anchor.count / anchor.n_texts, background.count / background.n_texts
    assert np.all(a_share[rel.features] > b_share[rel.features])
    assert all(rel.per_feature[int(f)]["q"] <= 0.05 for f in rel.features)
    # The p-values are scipy's one-sided Fisher exact test on the 2x2 table.
    for f in list(rel.features[:3]) + [int(np.flatnonzero(anchor.active & (a_share < b_share))[0])]:
        a, c = int(anchor.count[f]), int(background.count[f])
        table = [[a, anchor.n_texts - a], [c, background.n_texts - c]]
        assert rel.per_feature[int(f)]["p"] == pytest.approx(fisher_exact(table, alternative="greater")[1], rel=1e-6)
    # A stricter false-discovery rate keeps a subset.
    strict = contrast_features(anchor, background, alpha=0.001)
    assert set(strict.features) < set(rel.features)


def test_the_anchor_against_itself_has_no_relevant_features_and_says_so(anchor):
    rel = contrast_features(anchor, anchor)
    assert rel.n_relevant == 0 and "no feature passed" in rel.warning and "FAC is undefined" in rel.warning
    assert "steps of" not in rel.warning  # not "steps of 1/1": there are no steps when nothing passed


def test_all_is_every_non_generic_anchor_feature(anchor, background):
    rel = all_features(anchor, background)
    generic = background.count / background.n_texts > 0.5
    assert np.array_equal(rel.features, np.flatnonzero(anchor.active & ~generic))
    assert set(contrast_features(anchor, background).features) - set(rel.features) <= set(np.flatnonzero(generic))


def test_local_judge_decides_by_likelihood_and_caches(space, anchor, background, local_generator, tmp_path):
    rel = judge_features(anchor, background, space, local_generator, "instruction_following", max_judged=3,
                         cache_dir=tmp_path)
    assert rel.details["n_judged"] == 3 and rel.details["parse_rate"] == 1.0 and rel.details["n_unknown"] == 0
    assert rel.n_candidates == all_features(anchor, background).n_relevant
    assert all(d["how"] == "likelihood" and len(d["scores"]) == 4 for d in rel.per_feature.values())
    assert set(rel.features) == {f for f, d in rel.per_feature.items() if d["decision"] != "No"}
    # The three candidates are the anchor's most frequent non-generic features.
    pool = all_features(anchor, background).features
    assert sorted(rel.per_feature) == sorted(pool[np.argsort(-anchor.count[pool], kind="stable")][:3].tolist())
    calls = local_generator.stats.calls
    again = judge_features(anchor, background, space, local_generator, "instruction_following", max_judged=3,
                           cache_dir=tmp_path)
    assert again.per_feature == rel.per_feature and local_generator.stats.calls == calls


def test_http_judge_parses_decisions(space, anchor, background, fake_endpoint, tmp_path):
    answers = iter(["Final Decision: [[Probably]]", "I think so. Final Decision: [[No]]", "Final decision: [[maybe]]"])
    endpoint = fake_endpoint(lambda n, payload: (200, json.dumps(completion_body(next(answers))).encode(), 0.0))
    gen = HTTPGenerator(endpoint.url, timeout=5, max_retries=1, backoff=0.01)
    rel = judge_features(anchor, background, space, gen, "toxicity", max_judged=3, cache_dir=tmp_path)
    decisions = [rel.per_feature[f]["decision"] for f in sorted(rel.per_feature, key=lambda f: -anchor.count[f])]
    assert decisions == ["Probably", "No", "Maybe"] and rel.n_relevant == 2 and rel.details["parse_rate"] == 1.0
    assert "Toxicity detection" in endpoint.requests[0]["messages"][-1]["content"]


def test_unparseable_answers_are_retried_then_unknown_never_guessed(space, anchor, background, garbage_endpoint,
                                                                     fake_endpoint, tmp_path):
    chatter = fake_endpoint(lambda n, payload: (200, json.dumps(completion_body("Yes, I think it matters.")).encode(), 0.0))
    gen = HTTPGenerator(chatter.url, timeout=5, max_retries=0, backoff=0.01)
    rel = judge_features(anchor, background, space, gen, "toxicity", max_judged=2, retries=2, cache_dir=tmp_path)
    assert rel.n_relevant == 0 and rel.details["n_unknown"] == 2 and rel.details["parse_rate"] == 0.0
    assert len(chatter.requests) == 2 * 3  # each feature asked three times, then recorded as unknown
    retry = chatter.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"] and "Final Decision: [[" in retry[-1]["content"]
    assert "could be read for only 0%" in rel.warning
    broken = HTTPGenerator(garbage_endpoint.url, timeout=5, max_retries=0, backoff=0.01)
    rel = judge_features(anchor, background, space, broken, "toxicity", max_judged=2, retries=1, cache_dir=tmp_path)
    assert rel.details["by_decision"]["unknown"] == 2 and broken.stats.failures == 4


def test_judge_against_a_real_server(space, anchor, background, tserve, tmp_path):
    url, model = tserve
    gen = HTTPGenerator(url, model=model, timeout=120, max_retries=1)
    rel = judge_features(anchor, background, space, gen, "instruction_following", max_judged=1, retries=1,
                         max_new_tokens=24, cache_dir=tmp_path)
    (decision,) = [d["decision"] for d in rel.per_feature.values()]
    assert decision in {"Yes", "Probably", "Maybe", "No", "unknown"} and rel.details["parse_rate"] in {0.0, 1.0}
    assert gen.stats.calls >= 1 and gen.stats.failures == 0


def test_guidelines_and_mode_errors(anchor, background):
    assert load_guideline("instruction following")[0] == "instruction_following"
    assert load_guideline("Decide whether a feature helps with legal contract review.")[0] == "custom"
    with pytest.raises(FacInputError, match="unknown guideline 'legal'"):
        load_guideline("legal")
    with pytest.raises(FacInputError, match="needs a generator"):
        RelevanceSpec.of("judge", guideline="toxicity")
    with pytest.raises(FacInputError, match="needs a generator"):  # a spec whose judge was not loaded
        select_relevant(RelevanceSpec.of("judge", guideline="toxicity", generator="local"), anchor,
                        background=background)
    with pytest.raises(FacInputError, match="needs a contrast set"):
        select_relevant(RelevanceSpec.of("contrast"), anchor)
    with pytest.raises(FacInputError, match="is not one of"):
        RelevanceSpec.of("vibes")


def _hand_written_bh(p):
    """Benjamini-Hochberg as this project first wrote it: the oracle for scipy's."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(q)
    out[order] = q
    return out


def test_benjamini_hochberg_is_scipys_and_equals_the_hand_written_one(anchor, background):
    from scipy.stats import hypergeom

    tested = np.flatnonzero(anchor.active)
    a, c = anchor.count[tested], background.count[tested]
    real = hypergeom.sf(a - 1, anchor.n_texts + background.n_texts, a + c, anchor.n_texts)  # the test's own p-values
    rng = np.random.default_rng(0)
    for p in (real, rng.uniform(size=500), rng.uniform(size=200) ** 8, np.array([0.5, 0.5, 0.01, 1.0])):
        np.testing.assert_allclose(benjamini_hochberg(p), _hand_written_bh(p), rtol=1e-12, atol=0)
    assert benjamini_hochberg(np.array([])).size == 0
