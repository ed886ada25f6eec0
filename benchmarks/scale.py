"""Throughput on one device (or one launch): the figures of docs/performance.md#scale.

    python benchmarks/scale.py                          # CUDA when present, else the CPU (~3 min on 2 cores)
    python benchmarks/scale.py --device cpu --dtype float32
    torchrun --nproc_per_node 2 benchmarks/scale.py --only train   # one SAE, data parallel (rows/s of the launch)

Three rates for the default feature space (SmolLM2-135M-Instruct, layer 15, TopK 8192 / k 32),
on the same short chat prompts built from the bundled examples:

1. ``encode``: ``FeatureSpace.encode`` tokens/s, every token of the chat-formatted texts as
   ``encode_throughput.py`` counts them (the median of ``--repeats`` runs).
2. ``residuals``: ``extract_shards`` rows/s, a row being a counted token the SAE trains on (the
   LM up to the layer, fp16 shards written): the first step of ``fac train-sae``.
3. ``train``: SAE training rows/s with the default recipe (``SAETrainConfig``), from two runs of
   ``S`` and ``2S`` steps on those residuals: the difference of their times is ``S`` steps, so
   start-up, sae-lens' norm estimate, the ``b_dec`` init and the final copy to the CPU cancel.
   Under ``torchrun``/``accelerate launch`` every process trains its slice of the same global
   batches (``RankedTrainer``); the rate is the launch's global rows/s, so N processes ÷ 1
   is the speed-up.

One JSON object is printed (by process 0 under a launch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from encode_throughput import texts_for_benchmark  # benchmarks/ is on sys.path when run as a script


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # CUDA kernels run asynchronously: a timer must wait for them


def encode_rate(space, texts, batch_size: int, repeats: int, device: str) -> dict:
    n_tokens = sum(len(t.input_ids) for t in space.reader.tokenize_all(texts))
    space.encode(texts[:64], batch_size=batch_size, show_progress=False)  # warm-up
    rates = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        space.encode(texts, batch_size=batch_size, show_progress=False)
        _sync(device)
        rates.append(n_tokens / (time.perf_counter() - t0))
    return {"tokens": n_tokens, "tokens_per_s": round(statistics.median(rates))}


def residual_rate(space, texts, batch_size: int, out: Path, device: str, ranks) -> tuple[dict, torch.Tensor]:
    from fac_metric.training.sae_training import extract_shards

    rows = [{"messages": [{"role": "user", "content": t}]} for t in texts]
    _sync(device)
    t0 = time.perf_counter()
    shards = extract_shards(space.reader, rows, out, batch_size=batch_size, shard_texts=64, show_progress=False,
                            ranks=ranks)
    _sync(device)
    seconds = time.perf_counter() - t0
    acts = shards.load_all()
    return {"rows": int(acts.shape[0]), "rows_per_s": round(acts.shape[0] / seconds)}, acts


def train_rate(acts: torch.Tensor, steps: int, device: str, ranks) -> dict:
    from fac_metric.training.sae_training import SAETrainConfig, train_sae

    times = {}
    for n in (steps, 2 * steps):
        cfg = SAETrainConfig(epochs=n * 1024 / acts.shape[0], n_checkpoints=0)
        with tempfile.TemporaryDirectory() as tmp:
            ranks.barrier()
            _sync(device)
            t0 = time.perf_counter()
            train_sae(acts, cfg, tmp, device=device, ranks=ranks)
            _sync(device)
            times[n] = time.perf_counter() - t0
    per_step = (times[2 * steps] - times[steps]) / steps
    return {"steps": [steps, 2 * steps], "seconds": [round(times[steps], 2), round(times[2 * steps], 2)],
            "rows_per_s": round(1024 / per_step), "processes": ranks.world}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="the LM's dtype: auto (bf16 where fast), float32, bfloat16")
    p.add_argument("--n-texts", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=20, help="S: the runs train S and 2S steps")
    p.add_argument("--only", choices=("encode", "train"), help="encode only, or residuals + training only")
    args = p.parse_args()

    from fac_metric import get_feature_space
    from fac_metric.ranks import Ranks
    from fac_metric.training.sae_training import training_device

    ranks = Ranks.current()
    device = training_device(args.device, ranks)
    space = get_feature_space(None, device=device, dtype=args.dtype)
    texts = texts_for_benchmark(args.n_texts)
    result: dict = {"device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
                    "lm_dtype": str(space.reader.dtype), "threads": torch.get_num_threads(), "texts": len(texts)}
    if args.only != "train" and ranks.main:
        result["encode"] = encode_rate(space, texts, args.batch_size, args.repeats, device)
    if args.only != "encode":
        with tempfile.TemporaryDirectory() as tmp:
            # One folder every process sees: under a launch, process 0's (on one machine).
            folder = ranks.gather([(0, tmp)] if ranks.main else [])[0]
            result["residuals"], acts = residual_rate(space, texts, args.batch_size, Path(folder) / "acts", device, ranks)
            result["train"] = train_rate(acts, args.train_steps, device, ranks)
            ranks.barrier()  # process 0 removes the folder: the others must be done reading it
    if ranks.main:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
