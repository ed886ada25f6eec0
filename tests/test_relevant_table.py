"""The result says which features were judged relevant and why, and warns when they look like
phrasing (punctuation, question words) rather than content."""

from fac_metric import score
from fac_metric.meaning import form_warning, relevant_table

COUNTRIES = ["France", "Peru", "Japan", "Kenya", "Canada", "Norway", "Chile", "Egypt", "India", "Spain",
             "Ghana", "Nepal", "Italy", "Cuba", "Iran", "Mali", "Laos", "Oman", "Fiji", "Chad",
             "Iraq", "Togo", "Peru", "Niger", "Qatar", "Yemen", "Sudan", "Haiti", "Benin", "Gabon"]


def test_relevant_table_ranks_by_anchor_share_and_explains_each_feature(anchor_scored):
    rows = relevant_table(anchor_scored)
    assert len(rows) == 20
    shares = [r["anchor_share"] for r in rows]
    assert shares == sorted(shares, reverse=True)
    per = anchor_scored.relevance.per_feature
    for r in rows:
        assert r["feature"] in set(anchor_scored.relevance.features.tolist())
        assert r["label"]  # the embedded space labels every live feature
        assert r["contrast_share"] == round(per[r["feature"]]["contrast_share"], 4) < r["anchor_share"]
        assert r["q_value"] <= 0.05 and isinstance(r["form"], bool)
    # IFEval instructions are relevant for what they ask (formats, counts), not only for their phrasing
    assert form_warning(anchor_scored) is None


def test_question_shaped_anchor_against_prose_is_flagged_as_form(space, brown_texts):
    anchor = [f"What is the capital of {c}?" for c in COUNTRIES] + [f"How big is {c}?" for c in COUNTRIES]
    out = score(brown_texts[:20], anchor, feature_space=space, show_progress=False, coverage="binary")
    warning = form_warning(out)
    assert warning is not None and "phrased" in warning
    rows = relevant_table(out, n=None)
    assert sum(r["form"] for r in rows) >= len(rows) / 2
