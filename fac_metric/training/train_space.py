"""``fac train-sae``: from a corpus to a feature-space folder, in resumable stages.

Owns: the order of the stages and their files under a work directory
(``residuals/`` shards, ``checkpoints/``, ``run_config.json``, ``finished.json``), so that a
killed run restarted with the same arguments skips what is done, a finished one does nothing,
and one with other settings (corpus, layer, recipe) is refused instead of reusing stale stages. Stages: read residuals -> train the SAE -> save it into the
feature-space folder -> calibrate (per-latent scales and the background activations) ->
measure quality. Must not: know the CLI's argument parsing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from fac_metric.errors import FacInputError
from fac_metric.ranks import Ranks
from fac_metric.training.corpora import default_training_rows, split_heldout
from fac_metric.space.layer_reader import LayerReader, hook_for_layer
from fac_metric.space.models import DEFAULT_LM, load_lm
from fac_metric.training.residuals import InMemoryResiduals, StreamedResiduals
from fac_metric.training.sae_training import (
    SAETrainConfig,
    drop_outliers,
    extract_activations,
    extract_shards,
    training_device,
    sae_quality,
    spliced_loss,
    train_sae,
)
from fac_metric.space.tokenization import TextRule

log = logging.getLogger(__name__)


@dataclass
class TrainSpaceArgs:
    """Everything ``fac train-sae`` needs (one field per command-line flag)."""

    out: Path
    work_dir: Path
    model: str = DEFAULT_LM
    layer: int = 15
    rows: Sequence[dict] | None = None
    """Training rows (``{"text"}`` raw or ``{"messages"}`` chat); None = the default corpus."""
    max_length: int = 256
    dtype: str = "float32"
    batch_size: int = 32
    max_tokens: int = 1_350_000
    span_tokens: int = 600_000
    """Size of the training-corpus share the top spans are collected from (prompts come first)."""
    train: SAETrainConfig = field(default_factory=SAETrainConfig)
    show_progress: bool = True
    device: str = "auto"
    """Where the LM reads and the SAE trains: ``auto`` (the first CUDA GPU when present), ``cpu``, ``cuda:1``..."""
    stream: bool = False
    """Train from the residual shards a buffer at a time instead of holding every residual in RAM
    (for corpora or models whose residuals do not fit; another data order than the default recipe)."""
    buffer_tokens: int = 1_000_000
    """With ``stream``: residual rows shuffled together (memory: rows x d_model x 2 bytes)."""
    shard_texts: int = 2048
    """Training rows per residual shard: what a killed extraction resumes from, and what processes share."""


def default_rows(work_dir: Path, max_tokens_hint: int, seed: int = 0) -> list[dict]:
    """The default corpus, with general text subsampled (seeded) to about ``max_tokens_hint``.

    Prompts are all kept: they are what the default feature space is for.
    """
    rows = default_training_rows(work_dir / "npm")
    prompts = [r for r in rows if "messages" in r]
    general = [r for r in rows if "text" in r]
    # ~1.35 tokens per word for this tokenizer on edited English; prompts average ~200 tokens
    budget_words = max(0, (max_tokens_hint - 200 * len(prompts)) / 1.35)
    random.Random(seed).shuffle(general)
    kept, words = [], 0
    for r in general:
        if words >= budget_words:
            break
        kept.append(r)
        words += len(r["text"].split())
    return prompts + kept


def run(args: TrainSpaceArgs, ranks: Ranks | None = None) -> dict:
    """Run (or resume) every stage; return the quality figures also written to ``quality.json``.

    ``ranks`` (default: the running launch, if any): the processes share the residual shards,
    train one SAE data-parallel and share the top-span pass; process 0 alone measures quality
    and writes the feature space (the others return ``{}``). The work directory must be one
    folder every process sees.
    """
    ranks = ranks or Ranks.current()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.rows is not None:
        rows = list(args.rows)
    else:
        with ranks.main_first():  # process 0 fetches the corpus packages; the others read its copy
            rows = default_rows(args.work_dir, args.max_tokens, args.train.seed)
    train_rows, heldout_rows = split_heldout(rows)
    config = run_config(args, rows)
    check_same_run(args.work_dir, config)  # every process, before process 0 records this run
    finished = finished_quality(args, config)
    if finished is not None:
        log.info("%s was built from this work directory with these arguments: nothing to do", args.out)
        return finished if ranks.main else {}
    if ranks.main:
        (args.work_dir / "run_config.json").write_text(json.dumps({**config, "processes": ranks.world}, indent=2))
    dtype = getattr(torch, args.dtype)
    device = training_device(args.device, ranks)
    model, tokenizer = load_lm(args.model, dtype=dtype, device=torch.device(device))
    reader = LayerReader(model, tokenizer, hook_for_layer(args.layer, getattr(model.config, "model_type", "llama")),
                         TextRule("chat", args.max_length))
    shards = extract_shards(reader, train_rows, args.work_dir / "residuals" / "train", batch_size=args.batch_size,
                            shard_texts=args.shard_texts, show_progress=args.show_progress and ranks.main,
                            ranks=ranks)
    if args.stream:
        data = StreamedResiduals(shards, args.train.outlier_factor, buffer_rows=args.buffer_tokens, seed=args.train.seed)
    else:  # the default recipe: every residual in RAM, one permutation per epoch
        data = InMemoryResiduals(drop_outliers(shards.load_all(), args.train.outlier_factor))
    log.info("training on %d tokens on %s (process %d of %d)", data.n_rows, device, ranks.rank + 1, ranks.world)
    sae_dir = args.work_dir / "sae"
    if not (sae_dir / "cfg.json").is_file():
        sae = train_sae(data, args.train, args.work_dir / "checkpoints", device=device, ranks=ranks)
        if ranks.main:
            sae.save_model(sae_dir)
        ranks.barrier()
    del data
    quality: dict = {}
    if ranks.main:  # held-out figures: small, one process' work
        from sae_lens import SAE

        sae = SAE.load_from_disk(str(sae_dir), device="cpu")
        heldout = extract_activations(reader, heldout_rows, args.work_dir / "residuals" / "heldout",
                                      batch_size=args.batch_size, show_progress=args.show_progress)
        quality = sae_quality(sae, drop_outliers(heldout, args.train.outlier_factor))
        general = [r["text"] for r in heldout_rows if "text" in r][:300]
        quality.update(spliced_loss(reader, sae, general))
        quality.update(model=str(args.model), layer=args.layer, n_train_rows=len(train_rows),
                       n_heldout_rows=len(heldout_rows))
        (args.work_dir / "quality.json").write_text(json.dumps(quality, indent=2))
    finalize(args, reader, train_rows, heldout_rows, quality, ranks)
    if ranks.main:
        record_finished(args, config)
    return quality


# What a work directory's stages depend on, beside the training rows' hash. Not the process
# count: N processes train the one-process SAE (to float summation order).
def run_config(args: TrainSpaceArgs, rows: Sequence[dict]) -> dict:
    """The settings a work directory's stages were made with (``run_config.json``)."""
    digest = hashlib.sha256(json.dumps(list(rows), sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    n_train, n_heldout = (len(part) for part in split_heldout(rows))
    # Through JSON, so it compares equal to the copy read back from run_config.json (tuples, floats).
    return json.loads(json.dumps({"train": args.train.to_dict(), "model": str(args.model), "layer": args.layer, "n_train_rows": n_train,
            "n_heldout_rows": n_heldout, "rows_sha256": digest, "max_length": args.max_length, "dtype": args.dtype,
            "shard_texts": args.shard_texts, "stream": args.stream,
            "buffer_tokens": args.buffer_tokens if args.stream else None}))


def check_same_run(work_dir: Path, config: dict) -> None:
    """Refuse a work directory whose stages were made with other settings.

    Its shards and SAE are reused by file name: with another corpus, layer or recipe they would
    silently stand for this run. Nothing is deleted; the error names what differs.
    """
    path = work_dir / "run_config.json"
    made = any((work_dir / stage).exists() for stage in ("residuals", "checkpoints", "sae"))
    if not (made and path.is_file()):
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    # Keys an older fac did not record are not compared: its work directories still resume.
    changed = sorted(k for k in before if k != "processes" and before[k] != config.get(k))
    if changed:
        raise FacInputError(f"{work_dir} holds the stages of a run with other settings ({', '.join(changed)} "
                            "differ): give this run its own --work-dir, or delete that folder to start over")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finish_record(args: TrainSpaceArgs, config: dict) -> dict:
    out = Path(args.out)
    return {"config": config, "out": str(out.resolve()), "span_tokens": args.span_tokens,
            "out_sae_sha256": _sha256(out / "sae_weights.safetensors")}


def record_finished(args: TrainSpaceArgs, config: dict) -> None:
    """Note that ``args.out`` holds this run's feature space (``finished.json``)."""
    (args.work_dir / "finished.json").write_text(json.dumps(_finish_record(args, config), indent=2))


def finished_quality(args: TrainSpaceArgs, config: dict) -> dict | None:
    """The run's quality figures where ``args.out`` already holds what this run would write (a
    rerun then skips the LM passes of calibration, quality and top spans); else None."""
    record, out = args.work_dir / "finished.json", Path(args.out)
    needed = [record, args.work_dir / "quality.json", out / "sae_weights.safetensors", out / "feature_space.json"]
    if not all(p.is_file() for p in needed):
        return None
    try:
        if json.loads(record.read_text()) != _finish_record(args, config):
            return None
        return json.loads((args.work_dir / "quality.json").read_text())
    except (OSError, ValueError):
        return None


def calibrate(space, calibration_texts: Sequence, background_texts: Sequence, *, batch_size: int = 32,
              min_firings: int = 3, show_progress: bool = True):
    """A new space: ``space`` with per-latent scales, background and facts from held-out text.

    A latent's scale is the median of its pooled activation over the calibration texts it fires
    on: raw activations differ by an order of magnitude between latents, so δ is a fraction of
    this typical strength. Latents firing on fewer than ``min_firings`` texts get the median
    scale of the others. The background activations (generic text) ship with the space: they
    define which latents are generic and which are alive.
    """
    import numpy as np

    calib = space.encode(list(calibration_texts), batch_size=batch_size, show_progress=show_progress, desc="Calibrating")
    order = np.argsort(calib.indices, kind="stable")
    ids, vals = calib.indices[order], calib.values[order]
    bounds = np.searchsorted(ids, np.arange(space.d_sae + 1))
    firings = np.diff(bounds)
    scales = np.zeros(space.d_sae, np.float32)
    for i in np.flatnonzero(firings >= min_firings):
        scales[i] = np.median(vals[bounds[i] : bounds[i + 1]])
    fallback = float(np.median(scales[firings >= min_firings])) if (firings >= min_firings).any() else 1.0
    scales[firings < min_firings] = fallback
    background = space.encode(list(background_texts), batch_size=batch_size, show_progress=show_progress,
                              desc="Background")
    calibrated = space.with_calibration(scales, background)
    bg = calibrated.background_profile()
    calibrated.facts = [
        {"id": int(i), "scale": round(float(scales[i]), 4), "calibration_firings": int(firings[i]),
         "background_fraction": round(float(bg.count[i] / bg.n_texts), 4)}
        for i in range(space.d_sae)
    ]
    return calibrated


def row_items(rows: Sequence[dict]) -> list:
    """What a feature space encodes for each corpus row: its chat, or its text."""
    return [r.get("messages") or r["text"] for r in rows]


def rows_within(rows: Sequence[dict], max_tokens: int) -> list[dict]:
    """The leading rows of ``rows`` that fit about ``max_tokens`` tokens (~1.35 tokens a word)."""
    kept, tokens = [], 0.0
    for r in rows:
        if tokens >= max_tokens:
            break
        kept.append(r)
        text = r["text"] if "text" in r else " ".join(m["content"] for m in r["messages"])
        tokens += 1.35 * len(text.split())
    return kept


def describe(space, rows: Sequence[dict], *, k: int = 20, batch_size: int = 32, show_progress: bool = True,
             ranks=None):
    """Collect every latent's top spans over ``rows`` and write spans + summaries into ``space.facts``
    (``ranks``: spread over the processes of a launch, the same spans as one process)."""
    from fac_metric.meaning.explain import add_spans
    from fac_metric.meaning.spans import collect_spans

    heaps = collect_spans(space, row_items(rows), k=k, batch_size=batch_size, show_progress=show_progress, ranks=ranks)
    add_spans(space, heaps)
    return heaps


def finalize(args: TrainSpaceArgs, reader: LayerReader, train_rows: Sequence[dict], heldout_rows: Sequence[dict],
             quality: dict, ranks: Ranks | None = None) -> Path:
    """Write the feature-space folder: SAE + rule + scales + background + facts + spans + quality.

    Reuses the LM that ``run`` loaded; the space encodes with a 512-token context. ``ranks``:
    every process calibrates (held-out text: small) and collects its share of the top spans;
    process 0 writes the folder.
    """
    ranks = ranks or Ranks()
    from sae_lens import SAE

    from fac_metric.space.feature_space import FeatureSpace

    sae = SAE.load_from_disk(str(args.work_dir / "sae"), device="cpu")
    # The committed SAE is fp16: calibrate the exact weights that will be loaded.
    sae.to(torch.float16).to(torch.float32)
    sae.to(reader.device)  # beside the LM (a GPU when training ran on one)
    space_reader = LayerReader(reader.model, reader.tokenizer, reader.hook, TextRule("chat", 512))
    space = FeatureSpace(space_reader, sae, model_name=str(args.model))
    background = [r["text"] for r in heldout_rows if "text" in r]
    show = args.show_progress and ranks.main
    space = calibrate(space, row_items(heldout_rows), background, batch_size=args.batch_size, show_progress=show)
    describe(space, rows_within(train_rows, args.span_tokens), batch_size=args.batch_size, show_progress=show,
             ranks=ranks)
    if ranks.main:
        space.sae.to(torch.float16)  # halves the committed file
        space.save(args.out)
        space.sae.to(torch.float32)
        (Path(args.out) / "quality.json").write_text(json.dumps(quality, indent=2) + "\n")
    return Path(args.out)
