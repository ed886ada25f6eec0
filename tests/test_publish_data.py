"""Datasets and profiles on the Hub: repo folders that reload with ``datasets.load_dataset``, a
pushed profile used as an anchor by repo id (read from the Hub cache, offline), and ``fac score``
on a dataset repo with ``--split``/``--column``. No test reaches the network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import datasets

from fac_datasets_ext.cli import main
from fac_datasets_ext.publishing import build_dataset_repo, build_profile_repo


@pytest.fixture(scope="module")
def small(anchor_texts, brown_texts):
    return brown_texts[:6], anchor_texts[:8]


def _write_jsonl(path: Path, texts) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def _fac(out: Path) -> float:
    return json.loads((out / "result.json").read_text())["fac"]


def test_dataset_dict_repo_reloads_split_by_split(tmp_path, small):
    data, anchor = small
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": data}),
                               "test": datasets.Dataset.from_dict({"text": anchor})})
    folder = build_dataset_repo(dd, tmp_path / "repo", license="cc-by-4.0")
    card = (folder / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "path: data/test-" in card and "synthetic" not in card
    for split, texts in (("train", data), ("test", anchor)):
        assert list(datasets.load_dataset(str(folder), split=split)["text"]) == texts


def test_fac_score_reads_a_dataset_repo_by_split_and_column(tmp_path, small, capsys):
    data, anchor = small
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": anchor, "n": list(range(len(anchor)))}),
                               "test": datasets.Dataset.from_dict({"body": data, "n": list(range(len(data)))})})
    repo = build_dataset_repo(dd, tmp_path / "repo")
    anchor_file = _write_jsonl(tmp_path / "anchor.jsonl", anchor)
    args = ["--anchor", str(anchor_file), "--quiet"]
    assert main(["score", str(repo), "--split", "test", "--column", "body", "--anchor-column", "text",
                 "--out", str(tmp_path / "a"), *args]) == 0
    assert main(["score", str(_write_jsonl(tmp_path / "d.jsonl", data)), "--out", str(tmp_path / "b"), *args]) == 0
    assert _fac(tmp_path / "a") == _fac(tmp_path / "b")
    capsys.readouterr()
    assert main(["score", str(repo), "--split", "validation", "--column", "body", "--out", str(tmp_path / "c"), *args]) == 2
    assert "validation" in capsys.readouterr().err


def test_hub_dataset_offline_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["score", "nobody-here/no-such-dataset", "--split", "train", "--revision", "v1",
                 "--anchor", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "nobody-here/no-such-dataset" in err and "revision v1" in err and "HF_HUB_OFFLINE=1" in err
    assert "Traceback" not in err


def test_pushed_profile_is_an_anchor_by_repo_id_offline_from_the_cache(space, small, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    data, anchor = small
    profile = space.profile(anchor, show_progress=False)
    folder = build_profile_repo(profile, tmp_path / "profile_repo", name="ifeval anchor")
    card = (folder / "README.md").read_text()
    assert profile.fingerprint in card and f"{profile.n_texts:,} texts" in card
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    root = tmp_path / "hub" / "datasets--fac-metric--ifeval-anchor"
    shutil.copytree(folder, root / "snapshots" / commit, copy_function=os.link)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data_file = _write_jsonl(tmp_path / "d.jsonl", data)
    binary = ["--coverage", "binary", "--relevance", "all", "--quiet"]  # a profile holds counts, not texts
    assert main(["score", str(data_file), "--anchor", "fac-metric/ifeval-anchor", "--out", str(tmp_path / "hub_out"),
                 *binary]) == 0
    assert main(["score", str(data_file), "--anchor", str(_write_jsonl(tmp_path / "a.jsonl", anchor)),
                 "--out", str(tmp_path / "text_out"), *binary]) == 0
    assert _fac(tmp_path / "hub_out") == pytest.approx(_fac(tmp_path / "text_out"))
