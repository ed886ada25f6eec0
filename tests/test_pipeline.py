"""The one measuring pipeline: encode once and score many subsets, saved activations, δ and
relevance resolved once, one rule for the text column, and the seam between the packages."""

from __future__ import annotations

import ast
import json
import re
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import datasets

import fac_datasets_ext
from fac_metric import FacInputError, FacMismatchError, FeatureProfile, RelevanceSpec, Scorer, SparseActivations, score

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def anchor_profile(space, anchor_texts):
    return space.profile(anchor_texts[:80], batch_size=1, show_progress=False)


def test_subsets_of_one_encoded_pool_equal_as_many_score_calls(space, heldout_texts, brown_texts, anchor_profile):
    texts = heldout_texts[:12] + brown_texts[:12]
    # batch_size=1: each text alone, so the pool's encoding and each score() call see the same floats.
    pool = space.encode(texts, batch_size=1, show_progress=False)
    scorer = Scorer(space, coverage="binary")  # a saved anchor profile: counts, so binary FAC
    relevant = scorer.relevant(anchor_profile)
    rng = random.Random(0)
    subsets = [sorted(rng.sample(range(len(texts)), rng.randint(1, 8))) for _ in range(20)]
    fast = [scorer.fac(scorer.profile(pool.select(s)), anchor_profile, relevant) for s in subsets]
    slow = [score([texts[i] for i in s], anchor_profile, feature_space=space, batch_size=1, show_progress=False,
                  coverage="binary").result
            for s in subsets]
    assert [r.to_dict() for r in fast] == [r.to_dict() for r in slow]
    assert len({r.fac for r in fast}) > 8  # the subsets really differ


def test_profile_from_saved_activations_equals_profile_from_texts(space, heldout_texts, tmp_path):
    texts = heldout_texts[:40]
    path = space.encode(texts, show_progress=False).save(tmp_path / "pool.safetensors")
    for delta in (1.0, 2.0):  # saved activations can be counted at any δ, unlike a saved profile
        thr = space.threshold_at(delta)
        from_file = FeatureProfile.from_activations(SparseActivations.load(path), thr)
        from_texts = space.profile(texts, delta, show_progress=False)
        assert np.array_equal(from_file.count, from_texts.count)
        assert np.array_equal(from_file.max_activation, from_texts.max_activation)
        assert (from_file.n_texts, from_file.n_tokens, from_file.threshold) == \
            (from_texts.n_texts, from_texts.n_tokens, from_texts.threshold)
    # The scorer takes the file as it takes texts.
    assert np.array_equal(Scorer(space).profile(path).count, space.profile(texts, show_progress=False).count)


def test_activations_and_thresholds_of_another_space_are_refused(space, heldout_texts, tmp_path):
    other = space.with_calibration(space.scales * 2)  # same LM and SAE, other scales: another space
    assert other.fingerprint != space.fingerprint and space.calibrated  # and the original is untouched
    acts = space.encode(heldout_texts[:3], show_progress=False)
    with pytest.raises(FacMismatchError, match="another feature space"):
        FeatureProfile.from_activations(acts, other.threshold)
    with pytest.raises(FacMismatchError, match="another feature space"):
        Scorer(other).profile(SparseActivations.load(acts.save(tmp_path / "a.safetensors")))
    with pytest.raises(FacMismatchError, match="another feature space"):
        other.threshold_at(space.threshold)
    with pytest.raises(FacMismatchError, match="another feature space"):
        SparseActivations.concat([acts, other.encode(heldout_texts[:1], show_progress=False)])
    saved = space.profile(heldout_texts[:3], show_progress=False).save(tmp_path / "p")
    with pytest.raises(FacMismatchError, match="another feature space"):
        Scorer(other).profile(saved)
    with pytest.raises(FacMismatchError, match="δ=1.5, not δ=2.0"):
        Scorer(space, threshold=2.0).profile(saved)


@pytest.mark.parametrize("bad", [-1, float("nan"), "high", True])
def test_a_bad_threshold_fails_before_anything_is_encoded(space, bad):
    with pytest.raises(FacInputError, match="threshold"):
        Scorer(space, threshold=bad)


@pytest.mark.parametrize("relevance, options, message", [
    ("judge", {}, "needs a generator"),
    ("judge", {"generator": "local"}, "needs a guideline"),
    ("contrast", {"alpha": 1.5}, "alpha"),
    ("nearest", {}, "is not one of"),
    ([3, -1], {}, ">= 0"),
    ("judge", {"generator": "local", "guideline": "toxicity", "max_judged": -2}, "max_judged"),
])
def test_relevance_is_validated_once_the_same_way_everywhere(relevance, options, message, space, tmp_path):
    with pytest.raises(FacInputError, match=message):
        RelevanceSpec.of(relevance, **options)
    with pytest.raises(FacInputError, match=message):
        score(["a text"], ["an anchor"], feature_space=space, relevance=relevance, show_progress=False, **options)
    train = datasets.Dataset.from_dict({"text": ["a text"]})
    if message == "needs a generator":  # augment always has one (default "local"), which judges too
        message = "needs a guideline"
    with pytest.raises(FacInputError, match=message):  # fails before the generator runs or anything is encoded
        fac_datasets_ext.augment(train, ["an anchor"], relevance=relevance, feature_space=space, cache_dir=tmp_path,
                                 generator=options.get("generator", "local") if relevance == "judge" else "local",
                                 show_progress=False, **{k: v for k, v in options.items() if k != "generator"})


@pytest.mark.parametrize("columns", [
    {"question": "QUESTION", "content": "CONTENT"},
    {"messages": "MESSAGES", "text": "TEXT"},
    {"instruction": "INSTRUCTION", "input": "INPUT", "output": "OUTPUT"},
    {"title": "TITLE", "body": "BODY", "id": 1},
])
def test_the_same_columns_give_the_same_texts_in_score_and_augment(columns, heldout_texts, brown_texts, tmp_path):
    """``fac score`` reads what ``fac augment`` encodes, for every shape (the shape registry)."""
    from fac_datasets_ext.io import read_texts
    from fac_datasets_ext.shapes import shape_of

    rows = []
    for i in range(4):
        row = {}
        for name, tag in columns.items():
            if tag == "MESSAGES":
                row[name] = [{"role": "user", "content": heldout_texts[i]}, {"role": "assistant", "content": "ok"}]
            elif isinstance(tag, int):
                row[name] = i
            elif name == "title":
                row[name] = None  # not a string column: the only string column (body) holds the texts
            else:
                row[name] = f"{tag}: {brown_texts[i][:40]}"
        rows.append(row)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from fac_datasets_ext.io import load_rows

    ds = load_rows(path)
    encoded = [shape_of(ds).encoded(r) for r in ds]
    assert read_texts(path) == encoded
    expected = {"question": "CONTENT", "messages": heldout_texts[0], "instruction": "INSTRUCTION", "title": "BODY"}
    first = next(iter(columns))
    assert str(encoded[0]).startswith(expected[first]), encoded[0]


def test_score_and_augment_measure_the_same_fac(space, heldout_texts, anchor_texts, tmp_path):
    """The augmenter's FAC before synthesis is what ``score`` says of the same rows and anchor
    (augment picks targets, so it counts the paper's binary FAC over contrast features)."""
    train = datasets.Dataset.from_dict({"question": [t[:30] for t in heldout_texts[:12]], "content": heldout_texts[:12]})
    anchor = anchor_texts[:60]
    out = fac_datasets_ext.augment(train, anchor, max_calls=0, feature_space=space, cache_dir=tmp_path,
                                   show_progress=False)
    scored = score(train["content"], anchor, feature_space=space, show_progress=False, coverage="binary").result
    assert out.report["fac_before"] == scored.fac and out.report["relevant"] == scored.n_reference
    assert score(train["question"], anchor, feature_space=space, show_progress=False,
                 coverage="binary").result.fac != scored.fac


@pytest.mark.timeout(1200)
def test_judge_relevance_works_in_augment(space, local_generator, heldout_texts, anchor_texts, tmp_path):
    train = datasets.Dataset.from_dict({"text": heldout_texts[:10]})
    out = fac_datasets_ext.augment(train, anchor_texts[:40], relevance="judge", guideline="instruction_following",
                                   max_judged=4, max_calls=0, generator=local_generator, feature_space=space,
                                   cache_dir=tmp_path, show_progress=False)
    assert out.report["relevance"] == "judge"
    assert 0 < out.report["relevant"] <= 4  # at most the judged features; the local judge keeps some
    assert out.report["synthesis"]["calls"] == 0


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fac_metric"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("fac_metric")]
    return found


def test_fac_datasets_ext_uses_only_names_fac_metric_publishes():
    import importlib

    public = {"fac_metric", "fac_metric.space", "fac_metric.measure", "fac_metric.meaning", "fac_metric.llm",
              "fac_metric.training", "fac_metric.publish"}
    for path in sorted((ROOT / "fac_datasets_ext").glob("*.py")):
        for module, names in _imports(path):
            assert module in public, f"{path.name} imports {module}: import from its package instead"
            exported = set(importlib.import_module(module).__all__)
            private = [n for n in names if n not in exported]
            assert not private, f"{path.name} imports {private} from {module}, which does not publish them"


def test_one_place_builds_profiles_and_profile_py_runs_no_model():
    text = (ROOT / "fac_metric/measure/profile.py").read_text()
    assert not any(m.startswith(("torch", "transformers", "fac_metric.space")) for m, _ in
                   _imports(ROOT / "fac_metric/measure/profile.py"))
    assert not re.search(r"^\s*(import|from)\s+(torch|transformers)\b", text, re.M)
    # Outside profile.py, profiles come from FeatureProfile.from_activations, load or merge only.
    for path in list((ROOT / "fac_metric").rglob("*.py")) + list((ROOT / "fac_datasets_ext").glob("*.py")):
        if path.name == "profile.py":
            continue
        source = path.read_text()
        assert "FeatureProfile(" not in source.replace("FeatureProfile(np.full", ""), path
        assert "._fold(" not in source, path


def test_fac_help_imports_no_torch_or_datasets():
    """What makes ``fac --help`` fast (its time is measured in benchmarks/cli_startup.py)."""
    code = ("import sys; from fac_datasets_ext.cli import build_parser; p = build_parser(); p.format_help(); "
            "[a.choices[c].format_help() for a in p._subparsers._group_actions for c in a.choices]; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_cli_option_has_help_and_generator_is_declared_once():
    from fac_datasets_ext.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "score" in a.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"fac {name} {action.option_strings or action.dest} has no help"
    source = (ROOT / "fac_datasets_ext/cli.py").read_text()
    assert source.count('"--generator"') == 1


def test_version_and_debug(capsys):
    from fac_datasets_ext.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("fac 0.1.0")
    assert main(["--debug", "score", "missing.jsonl", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "does not exist" in err
    assert main(["score", "missing.jsonl", "--quiet"]) == 2
    assert "Traceback" not in capsys.readouterr().err
