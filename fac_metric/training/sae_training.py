"""Train a TopK SAE on one layer of any HF causal LM, resumably, and measure its quality.

Owns: extracting counted-token residuals into on-disk shards (so a killed run keeps what it
paid for), the training loop on sae-lens' ``SAETrainer`` with checkpoints and resume, and the
quality figures (explained variance, L0, dead latents, next-token loss when spliced). Must not:
decide the default feature space's files; ``fac_metric.build_space`` does that.

The recipe defaults follow the measurements in the project docs: TopK, ``d_sae`` 8192, k 32,
``b_dec`` initialised to the data mean (the mean direction carries over half of the squared
norm; a zero ``b_dec`` kills most latents early), a short dead-latent window, lr 1.2e-3 with
warm-up and a linear decay over the last 20%, and residual outliers (norms far above the median,
e.g. digits and newlines at this layer) dropped from training.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from fac_metric.ranks import Ranks
from fac_metric.space.layer_reader import LayerReader
from fac_metric.training.residuals import InMemoryResiduals, ResidualShards, StreamedResiduals, drop_outliers
from fac_metric.space.tokenization import TextRule, Tokenized, tokenize

os.environ.setdefault("WANDB_MODE", "disabled")


@dataclass
class SAETrainConfig:
    """Hyper-parameters of :func:`train_sae` (serialised beside the checkpoints)."""

    d_sae: int = 8192
    k: int = 32
    lr: float = 1.2e-3
    batch_size: int = 1024
    epochs: float = 1.0
    warmup_steps: int = 20
    decay_fraction: float = 0.2
    dead_feature_window: int = 100
    aux_loss_coefficient: float = 1.0
    outlier_factor: float = 10.0
    seed: int = 0
    n_checkpoints: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


def tokenize_rows(reader: LayerReader, rows: Sequence[dict]) -> list[Tokenized]:
    """Tokenise training rows: ``{"text"}`` rows raw, ``{"messages"}`` rows as chats."""
    out = []
    for row in rows:
        if "messages" in row:
            out.append(tokenize(reader.tokenizer, row["messages"], TextRule("chat", reader.rule.max_length)))
        else:
            out.append(tokenize(reader.tokenizer, row["text"], TextRule("raw", reader.rule.max_length)))
    return out


def extract_activations(reader: LayerReader, rows: Sequence[dict], out_dir: str | Path, *, batch_size: int = 32,
                        shard_texts: int = 2048, show_progress: bool = True) -> torch.Tensor:
    """Counted-token residuals of ``rows`` as one fp16 ``[n_tokens, d_model]`` tensor (in RAM:
    :func:`extract_shards` for corpora that do not fit)."""
    return extract_shards(reader, rows, out_dir, batch_size=batch_size, shard_texts=shard_texts,
                          show_progress=show_progress).load_all()


def extract_shards(
    reader: LayerReader,
    rows: Sequence[dict],
    out_dir: str | Path,
    *,
    batch_size: int = 32,
    shard_texts: int = 2048,
    show_progress: bool = True,
    ranks: Ranks | None = None,
) -> ResidualShards:
    """Counted-token residuals of ``rows``, written to fp16 shard files (none held in memory).

    Shards of ``shard_texts`` rows are written as they finish (write to a temporary name, then
    rename), and shards already on disk are kept instead of recomputed: a killed extraction
    resumes where it stopped. The LM may run on a GPU; shards are written from CPU copies.
    ``ranks``: the processes of a launch share the shards round-robin (into one folder they all
    see) and wait for each other; a shard's content does not depend on who wrote it.
    """
    ranks = ranks or Ranks()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    n_shards = math.ceil(len(rows) / shard_texts)
    bar = tqdm(total=len(rows), desc="Reading residuals", disable=not show_progress)
    for s in range(n_shards):
        path = out_dir / f"acts-{s:05d}.safetensors"
        chunk = rows[s * shard_texts : (s + 1) * shard_texts]
        if s % ranks.world == ranks.rank and not path.is_file():
            tokenized = tokenize_rows(reader, chunk)
            parts: list[tuple[int, torch.Tensor]] = []
            for ids in reader.batches(tokenized, batch_size):
                batch = reader.read(tokenized, ids)
                # keep the caller's text order, so shards do not depend on the batching
                for text_id, piece in zip(batch.text_ids, batch.residuals.split(batch.lengths)):
                    parts.append((text_id, piece.to(torch.float16).cpu()))
            parts.sort(key=lambda p: p[0])
            tmp = path.with_suffix(".tmp")
            save_file({"acts": torch.cat([p for _, p in parts]).contiguous()}, str(tmp))
            os.replace(tmp, path)
        shards.append(path)
        bar.update(len(chunk))
    bar.close()
    ranks.barrier()
    return ResidualShards(tuple(shards))


def training_device(device: str | None = "auto", ranks: Ranks | None = None) -> str:
    """``auto``: this process' GPU under a launch (``cuda:<local rank>``), else the first CUDA GPU
    when there is one, else the CPU."""
    if device in (None, "auto"):
        if ranks is not None and ranks.device:
            return ranks.device
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


NORM_BATCHES = 20
"""Batches sae-lens' activation scaler reads to estimate the mean residual norm (training starts after them)."""


def train_sae(data: "torch.Tensor | InMemoryResiduals | StreamedResiduals", cfg: SAETrainConfig,
              checkpoint_dir: str | Path, *, device: str = "cpu", ranks: Ranks | None = None):
    """Train a TopK SAE on ``data``; resume from the newest checkpoint in ``checkpoint_dir``.

    ``data``: residuals in RAM (a tensor) or streamed from shards (:class:`StreamedResiduals`).
    ``device``: where the SAE trains (``cuda``: with autocast). ``ranks``: the processes of a
    launch train one SAE data-parallel (each its slice of every batch: the steps of one process,
    see :mod:`~fac_metric.training.ranked_trainer`); every process must pass the same ``data``.
    Returns an inference ``TopKSAE`` on the CPU that works on raw residuals (norm scaling folded in).
    """
    from sae_lens import LoggingConfig, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    from fac_metric.training.ranked_trainer import RankedTrainer, slices  # imports sae-lens: only when training

    ranks = ranks or Ranks()
    if isinstance(data, torch.Tensor):
        data = InMemoryResiduals(data)
    torch.manual_seed(cfg.seed)
    checkpoint_dir = Path(checkpoint_dir)
    d_in = data.d_in
    total_steps = max(1, int(cfg.epochs * data.n_rows) // cfg.batch_size)
    sae_cfg = TopKTrainingSAEConfig(
        d_in=d_in,
        d_sae=cfg.d_sae,
        k=cfg.k,
        dtype="float32",
        device=device,
        apply_b_dec_to_input=True,
        normalize_activations="expected_average_only_in",
        aux_loss_coefficient=cfg.aux_loss_coefficient,
    )
    sae = TopKTrainingSAE(sae_cfg)
    resume = _newest_checkpoint(checkpoint_dir)
    trainer_cfg = SAETrainerConfig(
        total_training_samples=total_steps * cfg.batch_size,
        train_batch_size_samples=cfg.batch_size,
        lr=cfg.lr,
        lr_end=cfg.lr * 0.01,
        lr_scheduler_name="constant",
        lr_warm_up_steps=cfg.warmup_steps,
        lr_decay_steps=int(total_steps * cfg.decay_fraction),
        dead_feature_window=cfg.dead_feature_window,
        feature_sampling_window=max(cfg.dead_feature_window, 200),
        n_checkpoints=cfg.n_checkpoints,
        checkpoint_path=str(checkpoint_dir),
        n_batches_for_norm_estimate=NORM_BATCHES,
        logger=LoggingConfig(log_to_wandb=False),
        device=device,
        autocast=device.startswith("cuda"),
    )
    if resume is None:
        with torch.no_grad():
            # The data mean as b_dec: without it, most latents die in the first steps. The
            # trainer feeds the SAE inputs scaled to an average norm of sqrt(d_in), so b_dec is
            # set in those units.
            sample = data.sample(200_000)
            scale = math.sqrt(d_in) / float(sample.norm(dim=1).mean())
            sae.b_dec.copy_((sample.mean(dim=0) * scale).to(sae.b_dec.device))
    else:
        state = load_file(str(resume / "sae_weights.safetensors"))
        sae.load_state_dict({k: v for k, v in state.items() if k in sae.state_dict()}, strict=False)
    trainer = RankedTrainer(cfg=trainer_cfg, sae=sae, data_provider=iter(()), ranks=ranks)
    if resume is not None:
        trainer.load_trainer_state(resume)  # with the scaling factor the weights were trained against
        trainer.checkpoint_thresholds = [t for t in trainer.checkpoint_thresholds if t > trainer.n_training_samples]
    else:
        # sae-lens' own estimate, as its fit() would make it, but from the global batches, so
        # that every process of a launch gets the one-process factor.
        trainer.activation_scaler.estimate_scaling_factor(d_in, data.batches(cfg.batch_size, cfg.seed), NORM_BATCHES)
    # Training reads the batches after those the estimate read, fresh or resumed alike, so a
    # resumed run trains on the batches the uninterrupted one would have.
    trainer.data_provider = slices(data.batches(cfg.batch_size, cfg.seed, skip=NORM_BATCHES + trainer.n_training_steps),
                                   ranks)
    trainer.fit()
    return _to_inference(trainer.sae)


def _newest_checkpoint(checkpoint_dir: Path) -> Path | None:
    done = [p for p in checkpoint_dir.glob("*") if p.name.isdigit() and (p / "sae_weights.safetensors").is_file()]
    return max(done, key=lambda p: int(p.name)) if done else None


def _to_inference(training_sae):
    """The inference ``TopKSAE`` with the trained weights (what ``SAE.load_from_disk`` returns)."""
    import tempfile

    from sae_lens import SAE

    with tempfile.TemporaryDirectory() as tmp:
        training_sae.save_inference_model(tmp)
        return SAE.load_from_disk(tmp, device="cpu")


@torch.inference_mode()
def sae_quality(sae, acts: torch.Tensor, batch_size: int = 4096) -> dict:
    """Explained variance, mean L0 and dead-latent share of ``sae`` on held-out ``acts``."""
    total_sq_err = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    l0_sum = 0.0
    mean = acts.float().mean(dim=0)
    total_var = float(((acts.float() - mean) ** 2).sum())
    for start in range(0, acts.shape[0], batch_size):
        x = acts[start : start + batch_size].float()
        z = sae.encode(x)
        total_sq_err += float(((sae.decode(z) - x) ** 2).sum())
        active = z > 0
        fired |= active.any(dim=0)
        l0_sum += float(active.sum())
    return {
        "explained_variance": 1.0 - total_sq_err / total_var,
        "mean_l0": l0_sum / acts.shape[0],
        "dead_fraction": 1.0 - float(fired.float().mean()),
        "n_tokens": int(acts.shape[0]),
    }


@torch.inference_mode()
def spliced_loss(reader: LayerReader, sae, texts: Sequence[str], batch_size: int = 16) -> dict:
    """Next-token loss of the LM on raw ``texts``, clean vs with the SAE's reconstruction spliced
    in at the hooked layer (position 0, the attention sink the SAE never saw, is left as is)."""
    model = reader.model
    sae = sae.to(reader.device)  # the LM may be on a GPU
    rule = TextRule("raw", reader.rule.max_length)
    tokenized = [tokenize(reader.tokenizer, t, rule) for t in texts]
    totals = {"clean": 0.0, "spliced": 0.0}
    n_pred = 0

    def splice(_m, _i, output):
        hidden = output[0] if isinstance(output, tuple) else output
        recon = sae.decode(sae.encode(hidden[:, 1:].float())).to(hidden.dtype)
        hidden = torch.cat([hidden[:, :1], recon], dim=1)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    for ids in reader.batches(tokenized, batch_size):
        input_ids, mask, _ = reader.pad(tokenized, ids)
        input_ids, mask = input_ids.to(reader.device), mask.to(reader.device)
        labels = input_ids.masked_fill(mask == 0, -100)
        labels[:, :1] = -100  # predicting token 1 from the sink alone says nothing about the SAE
        for name in totals:
            handle = reader.module.register_forward_hook(splice) if name == "spliced" else None
            try:
                logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits.float()
            finally:
                if handle:
                    handle.remove()
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
            )
            totals[name] += float(loss)
        n_pred += int((labels[:, 1:] != -100).sum())
    clean, spliced = totals["clean"] / n_pred, totals["spliced"] / n_pred
    return {"clean_loss": clean, "spliced_loss": spliced, "loss_increase": spliced - clean, "n_predictions": n_pred}
