"""coverage="match": each anchor text's best overlap with one data text, beside the paper's binary FAC."""

import pytest

from fac_metric import FacInputError, score


def test_match_ranks_same_task_above_unrelated_and_keeps_the_binary_fac(space, anchor_texts, heldout_texts,
                                                                         brown_texts):
    anchor = anchor_texts[:60]
    same = score(heldout_texts[:30], anchor, feature_space=space, show_progress=False, coverage="match")
    other = score(brown_texts[:30], anchor, feature_space=space, show_progress=False, coverage="match")
    binary = score(heldout_texts[:30], anchor, feature_space=space, show_progress=False)
    assert same.result.coverage == "match" and 0 <= other.result.fac < same.result.fac <= 1
    assert same.result.binary_fac == binary.result.fac and same.result.missing == binary.result.missing
    assert len(same.match.per_anchor) <= 60 and same.match.per_anchor.max() <= 1
    # adding texts never lowers it: the match is a running max
    more = score(heldout_texts[:30] + brown_texts[:10], anchor, feature_space=space, show_progress=False,
                 coverage="match")
    assert more.result.fac >= same.result.fac


def test_match_refuses_a_profile_before_encoding_and_unknown_coverage(space, anchor_scored, anchor_texts):
    with pytest.raises(FacInputError, match="needs the data's texts or activations"):
        score(anchor_scored.data_profile, anchor_texts, feature_space=space, coverage="match", show_progress=False)
    with pytest.raises(FacInputError, match="coverage='soft'"):
        score(["a"], ["b"], feature_space=space, coverage="soft")
