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


def _small_run(tmp_path):
    """A 120-text Brown corpus and the train-sae arguments of a small SAE on it: (corpus, args)."""
    corpus = tmp_path / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in example_path("brown_unseen").read_text().splitlines()][:120]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return corpus, ["train-sae", "--out", str(tmp_path / "space"), "--work-dir", str(tmp_path / "work"), "--data",
                    str(corpus), "--d-sae", "256", "--k", "8", "--epochs", "3", "--shard-texts", "40", "--quiet"]


def test_train_sae_builds_a_loadable_feature_space_and_resumes(tmp_path, capsys):
    corpus, args = _small_run(tmp_path)
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


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to float summation order (2 threads here, 1 per process there), at a bound that tells
    SAEs of another data order or seed apart."""
    return torch.allclose(a, b, rtol=0, atol=1e-3 * float(b.abs().max()))


_TRAIN_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from fac_metric.ranks import Ranks
from test_train_sae import train_on_random_residuals

sae_weights = train_on_random_residuals(sys.argv[1], seed=0, ranks=Ranks.current())
if sae_weights is not None:
    save_file(sae_weights, sys.argv[1] + "/sae.safetensors")
"""


def train_on_random_residuals(folder, seed: int, ranks=None) -> dict | None:
    """A small TopK SAE trained on fixed random residuals (12 steps); its weights on process 0."""
    from fac_metric.training.sae_training import SAETrainConfig, train_sae

    acts = torch.randn(6144, 64, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.5, 2.0, 64)
    cfg = SAETrainConfig(d_sae=128, k=8, epochs=2, warmup_steps=2, n_checkpoints=2, seed=seed)
    sae = train_sae(acts, cfg, f"{folder}/checkpoints", ranks=ranks)
    return {k: v.detach().contiguous() for k, v in sae.state_dict().items()} if ranks is None or ranks.main else None


def test_two_processes_train_the_one_process_sae(tmp_path):
    """RankedTrainer (gloo here): each process trains on its half of every batch, gradients averaged
    in backward, dead-latent counters combined: the SAE one process trains on the whole batches."""
    from pathlib import Path

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(Path(__file__).resolve().parent)}  # the script imports this module
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    two = load_file(str(tmp_path / "sae.safetensors"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each process ran
    try:
        one = train_on_random_residuals(tmp_path / "one", seed=0)
        other = train_on_random_residuals(tmp_path / "seed1", seed=1)
    finally:
        torch.set_num_threads(threads)
    assert set(one) == set(two) and all(_close(two[k], w) for k, w in one.items())
    assert not _close(other["W_dec"], one["W_dec"])  # the bound tells SAEs apart


@pytest.mark.slow  # ~2 min: the same CLI run in 1 and 2 processes (the trainer's equality is tested fast above)
def test_train_sae_in_two_processes_builds_the_one_process_space(tmp_path):
    _, args = _small_run(tmp_path)
    assert main(args) == 0
    quality = json.loads((tmp_path / "space/quality.json").read_text())
    space = FeatureSpace.load(tmp_path / "space", dtype="float32")
    top = max(range(256), key=lambda i: space.fact(i).get("corpus_firings", 0))
    shards = sorted((tmp_path / "work/residuals/train").iterdir())
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
    assert all(_close(two_sae[name], w) for name, w in one_sae.items())
    assert json.loads((tmp_path / "space3/quality.json").read_text())["explained_variance"] == \
        pytest.approx(quality["explained_variance"], rel=1e-3)
    spread = FeatureSpace.load(tmp_path / "space3", dtype="float32")
    assert spread.calibrated and spread.fact(top)["top_spans"]
