"""The equal-budget synthesis study's quick mode, end to end on package data, with the embedded
generator: what it asserts is what holds on any sliver (the full figures are in docs/results.md)."""

import json

from experiments.synthesis.budget import ARMS


def test_quick_budget_study_fac_synthesis_covers_more_missing_features_than_unguided_at_equal_calls(tmp_path,
                                                                                                  validity_quick):
    from experiments.synthesis.budget import main

    out = tmp_path / "budget.json"
    # the validity study's quick encodings (as the full studies share theirs): only new rows are encoded
    main(["--quick", "--work", str(tmp_path / "work"), "--study-work", str(validity_quick[0]), "--out", str(out)])
    result = json.loads(out.read_text())
    by_arm = {r["arm"]: r for r in result["runs"]}
    assert set(by_arm) == set(ARMS) and set(result["summary"]) == set(ARMS)
    fac, plain = by_arm["FAC Synthesis"], by_arm["unguided, equal calls"]
    assert fac["rows_added"] == result["budget"] and fac["calls"] == plain["calls"] > 0
    # Every FAC row fires a feature the seed set missed (at most 2 rows share one: samples_per_feature);
    # plain prompting finds fewer for the same calls.
    assert fac["missing_covered"] >= -(-fac["rows_added"] // 2) > 0
    assert fac["missing_covered"] > plain["missing_covered"]
    assert by_arm["seed only"]["missing_covered"] == 0 and by_arm["seed only"]["calls"] == 0
    assert all(0 <= r["auprc"] <= 1 for r in result["runs"])
    assert "text" not in json.dumps(result)  # ids and figures only: the task is harmful requests
