"""SAE training from residual shards streamed a buffer at a time (``fac train-sae
--stream-activations``): every kept row once per epoch, outliers dropped, resumable, and an SAE
that learns; the in-RAM default recipe is tests/test_train_sae.py."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from fac_metric.training.residuals import InMemoryResiduals, ResidualShards, StreamedResiduals, drop_outliers


def _shards(folder, n_shards=5, rows=300, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(24, d, generator=g)
    for s in range(n_shards):
        codes = torch.relu(torch.randn(rows, 24, generator=g) - 1.0)  # sparse: what an SAE can find
        acts = codes @ basis + 0.01 * torch.randn(rows, d, generator=g)
        acts[0] *= 100.0  # one outlier per shard, far above the median norm
        save_file({"acts": acts.to(torch.float16).contiguous()}, str(folder / f"acts-{s:05d}.safetensors"))
    return ResidualShards.in_folder(folder)


def test_every_kept_row_once_per_epoch_outliers_dropped_and_resume_continues(tmp_path):
    shards = _shards(tmp_path)
    data = StreamedResiduals(shards, factor=10.0, buffer_rows=400, seed=3)
    assert data.n_rows == 5 * 299  # the five outliers are gone
    per_epoch = data.n_rows // 50
    stream = data.batches(50)
    epoch = torch.cat([next(stream) for _ in range(per_epoch)])
    kept = drop_outliers(shards.load_all(), 10.0, data.median).float()
    # Each buffer drops at most a partial batch, carried on; the epoch's tail (< one batch) is dropped.
    assert len(epoch) >= data.n_rows - 50
    rows = {tuple(r.tolist()) for r in kept}
    assert all(tuple(r.tolist()) in rows for r in epoch) and len({tuple(r.tolist()) for r in epoch}) == len(epoch)
    again = data.batches(50, skip=7)  # a resumed run sees the batches it would have seen
    fresh = data.batches(50)
    for _ in range(7):
        next(fresh)
    for _ in range(20):  # into the second epoch
        assert torch.equal(next(again), next(fresh))


def test_an_sae_trained_streaming_reconstructs_and_resumes(tmp_path):
    from fac_metric.training.sae_training import SAETrainConfig, sae_quality, train_sae

    (tmp_path / "shards").mkdir()
    shards = _shards(tmp_path / "shards", n_shards=4, rows=1000)
    data = StreamedResiduals(shards, factor=10.0, buffer_rows=1500, seed=0)
    cfg = SAETrainConfig(d_sae=64, k=6, batch_size=100, epochs=2.0, warmup_steps=5, dead_feature_window=20,
                         n_checkpoints=2, lr=3e-3)
    sae = train_sae(data, cfg, tmp_path / "ckpt", device="cpu")
    held = InMemoryResiduals(drop_outliers(shards.load_all(), 10.0, data.median))
    quality = sae_quality(sae, held.acts[:1000])
    assert quality["explained_variance"] > 0.5 and quality["mean_l0"] <= 6 + 1e-6
    # Killed after its checkpoints: a second call resumes from the newest and finishes.
    resumed = train_sae(data, cfg, tmp_path / "ckpt", device="cpu")
    assert sae_quality(resumed, held.acts[:1000])["explained_variance"] > 0.5
