"""The validity study's quick mode runs end to end on package data, and writes what it promises
(the numbers of a sliver mean nothing: the full study's are in docs/results.md)."""

import json

import numpy as np

from experiments.validity import stats
from experiments.validity.sets import anchor_rows, design
from experiments.validity.task import build_task


def test_task_splits_and_sets_never_touch_the_anchor_or_the_test_split():
    items = build_task(per_source=30)
    assert {it.split for it in items} == {"pool", "test"} and {it.label for it in items} == {0, 1}
    anchor = set(anchor_rows(items))
    sets = design(items, sizes=(4, 8), n_benign=30)
    used = {r for s in sets for r in s.rows}
    assert used and not used & anchor
    assert all(items[r].split == "pool" for r in used | anchor)
    assert all(sum(items[r].label for r in s.rows) == s.n_positive for s in sets)
    assert [s.rows for s in sets] == [s.rows for s in design(build_task(per_source=30), sizes=(4, 8), n_benign=30)]


def test_group_bootstrap_draws_whole_compositions():
    groups = np.array(["a", "a", "b", "b", "b", "c"])
    for rep in stats.replicates(groups, 50, 0, by_group=True):
        drawn = groups[rep]
        for g in "abc":  # a composition comes with all its sets, or not at all (possibly twice)
            assert (drawn == g).sum() % (groups == g).sum() == 0


def test_quick_study_writes_tables_plots_and_no_task_text(validity_quick):
    _, out = validity_quick
    res = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()
    assert (out / "results_scatter.png").stat().st_size > 1000
    expected = {"fac[background,binary]", "cluster_coverage", "soft_coverage", "1 - self_bleu", "vendi", "set size"}
    assert expected <= set(res["table"])
    for name, row in res["table"].items():
        if "undefined" in row:
            continue
        for metric in ("spearman", "within_size_spearman", "pearson"):
            for boot in ("set", "group"):
                iv = row[metric][boot]
                assert iv["ci95"][0] <= iv["value"] + 1e-9 and iv["value"] - 1e-9 <= iv["ci95"][1], (name, metric)
        assert f"| {name} |" in md
    assert res["paired"] and all(0 <= p["p_better"] <= 1 for p in res["paired"])
    texts = [it.text for it in build_task(per_source=30) if len(it.text) > 40]
    blob = md + json.dumps(res)
    assert not any(t[:40] in blob for t in texts)  # ids and scores only, never a prompt


def test_a_second_task_reuses_the_texts_it_shares_and_encodes_only_the_rest(tmp_path, monkeypatch):
    from experiments.validity import encode
    from fac_metric import get_feature_space

    space = get_feature_space(None)
    first = encode.sae_activations(space, ["a:0", "a:1"], ["The cat sat.", "Is it raining?"], tmp_path, "one")
    seen = []
    real_encode = space.encode
    # the real encoder, wrapped to record what it reads (restored after the test: the space is shared)
    monkeypatch.setattr(space, "encode", lambda texts, **kw: seen.append(list(texts)) or real_encode(texts, **kw))
    second = encode.sae_activations(space, ["b:0", "a:1", "a:0"], ["Wash your hands.", "Is it raining?",
                                                                   "The cat sat."], tmp_path, "two")
    assert seen == [["Wash your hands."]]  # the shared texts are taken from the first task's cache
    assert second.select([1, 2]) == first.select([1, 0])
    assert second.select([0]) == real_encode(["Wash your hands."])
    # a text whose id matches but whose content changed is read again, never reused
    third = encode.sae_activations(space, ["a:0"], ["The dog sat."], tmp_path, "three")
    assert seen[-1] == ["The dog sat."] and third == real_encode(["The dog sat."])


def test_health_check_task_has_its_own_classes_and_shares_negatives():
    from experiments.validity.task import positive_sources

    items = build_task(per_source=20, task="health")
    assert all(s.startswith("health_") for s in positive_sources(items)) and len(positive_sources(items)) == 7
    harmful = {(it.id, it.text) for it in build_task(per_source=20) if it.label == 0}
    negatives = {(it.id, it.text) for it in items if it.label == 0}
    assert negatives and negatives <= harmful  # the same ids mean the same texts across tasks
    assert design(items, sizes=(4, 8), n_benign=30)
