"""`fac train-sae` end to end on a small corpus: a feature-space folder that loads and encodes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fac_datasets_ext.cli import main
from fac_metric.examples import example_path
from fac_metric.space.feature_space import FeatureSpace


def test_train_sae_builds_a_loadable_feature_space_and_resumes(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in example_path("brown_unseen").read_text().splitlines()][:120]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = ["train-sae", "--out", str(tmp_path / "space"), "--work-dir", str(tmp_path / "work"), "--data", str(corpus),
            "--d-sae", "256", "--k", "8", "--epochs", "3", "--shard-texts", "40", "--quiet"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((tmp_path / "work/quality.json").read_text())
    quality = json.loads((tmp_path / "space/quality.json").read_text())
    for key in ("explained_variance", "mean_l0", "dead_fraction", "loss_increase"):
        assert key in quality
    assert 0 < quality["mean_l0"] <= 8
    space = FeatureSpace.load(tmp_path / "space", dtype="float32")
    assert space.d_sae == 256 and space.calibrated and space.background.n_texts > 0
    # the last stage collected every latent's top spans and labelled it
    top = max(range(256), key=lambda i: space.fact(i).get("corpus_firings", 0))
    assert space.fact(top)["top_spans"] and space.fact(top)["summary"].startswith("peaks on")
    assert space.token_counts is not None and space.token_counts.sum() > 0
    acts = space.encode(["A quiet morning in the valley."], show_progress=False)
    assert 0 < len(acts.row(0)[0]) <= 256 and np.all(acts.values > 0)
    # a second run with the same arguments finds the space built: nothing is read or written again
    built = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "space").iterdir()}
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == quality
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "space").iterdir()} == built
    # killed after training (no finish record): the shards and the SAE are reused, the space rebuilt
    shards = sorted((tmp_path / "work/residuals/train").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in [*shards, tmp_path / "work/sae/sae_weights.safetensors"]]
    (tmp_path / "work/finished.json").unlink()
    assert main(args) == 0
    capsys.readouterr()
    assert [p.stat().st_mtime_ns for p in [*sorted((tmp_path / "work/residuals/train").iterdir()),
                                          tmp_path / "work/sae/sae_weights.safetensors"]] == mtimes
    assert FeatureSpace.load(tmp_path / "space", dtype="float32").fingerprint == space.fingerprint
    # other settings on the same work directory are refused before anything runs (stale shards or
    # an SAE of another recipe would otherwise stand for them)
    assert main([a if a != "8" else "16" for a in args]) == 2
    assert "holds the stages of a run with other settings (train differ)" in capsys.readouterr().err
    # --stream-activations: the same residual shards, trained from a buffer at a time (on the CPU here)
    import shutil

    shutil.copytree(tmp_path / "work/residuals", tmp_path / "work2/residuals")
    streamed = ["train-sae", "--out", str(tmp_path / "space2"), "--work-dir", str(tmp_path / "work2"), "--data",
                str(corpus), "--d-sae", "256", "--k", "8", "--epochs", "3", "--shard-texts", "40", "--quiet",
                "--stream-activations",
                "--buffer-tokens", "500", "--device", "cpu"]
    assert main(streamed) == 0
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "work2/residuals/train").iterdir()) == [p.name for p in shards]
    again = json.loads((tmp_path / "space2/quality.json").read_text())
    assert again["explained_variance"] > 0.5 * quality["explained_variance"] and 0 < again["mean_l0"] <= 8

    # --processes 2: the processes share the 3 residual shards and the span pass, and train one SAE
    # data-parallel (each half of every batch, gradients averaged): one process' SAE, to float
    # summation order (this process runs 2 threads, those 1 each).
    two = [a.replace("work", "work3").replace("space", "space3") if a.startswith(str(tmp_path)) else a for a in args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-m", "fac_datasets_ext.cli", *two, "--processes", "2"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == json.loads((tmp_path / "work3/quality.json").read_text())  # process 0 reports
    assert sorted(p.name for p in (tmp_path / "work3/residuals/train").iterdir()) == [p.name for p in shards]
    one_sae, two_sae = (load_file(str(tmp_path / w / "sae/sae_weights.safetensors")) for w in ("work", "work3"))
    def close(a, b):
        return torch.allclose(a, b, rtol=0, atol=1e-3 * float(b.abs().max()))

    assert all(close(two_sae[name], w) for name, w in one_sae.items())
    # the bound tells SAEs apart: the streamed run (another data order) is far outside it
    assert not close(load_file(str(tmp_path / "work2/sae/sae_weights.safetensors"))["W_dec"], one_sae["W_dec"])
    assert json.loads((tmp_path / "space3/quality.json").read_text())["explained_variance"] == \
        pytest.approx(quality["explained_variance"], rel=1e-3)
    spread = FeatureSpace.load(tmp_path / "space3", dtype="float32")
    assert spread.calibrated and spread.fact(top)["top_spans"]
