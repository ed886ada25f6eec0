"""coverage="match": each anchor text's best overlap with one data text, beside the paper's binary FAC."""

import pytest

from fac_metric import FacInputError, SparseActivations, score


def test_match_ranks_same_task_above_unrelated_and_keeps_the_binary_fac(space, anchor_texts, heldout_texts,
                                                                         brown_texts):
    # Encoded once; every score below reads activations (the texts path is checked at the end).
    anchor = space.encode(anchor_texts[:60], show_progress=False)
    same_acts = space.encode(heldout_texts[:30], show_progress=False)
    brown = space.encode(brown_texts[:30], show_progress=False)

    def run(data, **kw):
        return score(data, anchor, feature_space=space, show_progress=False, **kw)

    same, other = run(same_acts, coverage="match"), run(brown, coverage="match")
    binary = run(same_acts, coverage="binary", relevance="all")
    assert same.result.coverage == "match" and 0 <= other.result.fac < same.result.fac <= 1
    assert same.result.relevance == "all"  # match's default relevance (no contrast set given)
    assert same.result.binary_fac == binary.result.fac and same.result.missing == binary.result.missing
    assert len(same.match.per_anchor) <= 60 and same.match.per_anchor.max() <= 1
    # adding texts never lowers it (the match is a running max); duplicating texts never raises it
    assert run(SparseActivations.concat([same_acts, brown.select(range(10))])).result.fac >= same.result.fac
    assert run(SparseActivations.concat([same_acts, same_acts])).result.fac == same.result.fac
    # match is the default, and texts give what their activations give
    texts = score(heldout_texts[:30], anchor_texts[:60], feature_space=space, show_progress=False)
    assert texts.result.coverage == "match" and texts.result.fac == pytest.approx(same.result.fac, abs=0.01)


def test_match_refuses_a_profile_before_encoding_and_unknown_coverage(space, anchor_scored, anchor_texts):
    with pytest.raises(FacInputError, match="needs the data's texts or activations"):
        score(anchor_scored.data_profile, anchor_texts, feature_space=space, coverage="match", show_progress=False)
    with pytest.raises(FacInputError, match="coverage='soft'"):
        score(["a"], ["b"], feature_space=space, coverage="soft")
