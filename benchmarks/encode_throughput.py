"""Encoding speed and memory, measured side by side in one run (ratios, not absolute times).

    python benchmarks/encode_throughput.py                 # all three comparisons
    python benchmarks/encode_throughput.py --skip-memory   # throughput only (~3 min on 2 cores)
    python benchmarks/encode_throughput.py --skip-throughput   # memory only (~8 min on 2 cores)
    python benchmarks/encode_throughput.py --skip-throughput --skip-memory --compare-dtypes   # bf16 vs fp32

1. ``FeatureSpace.encode`` tokens/s ÷ a bare forward truncated at the same layer, same texts,
   batch size and dtype (target >= 0.85: the SAE's own arithmetic is the only extra work).
2. ``FeatureSpace.encode`` ÷ a naive pipeline: full forward with ``output_hidden_states=True``
   (all 30 layers and the logits), the SAE over every padded position, a Python max per text
   (target >= 3x).
3. Streaming a profile over 20k texts vs 2k texts: growth of peak RSS above the loaded-model
   baseline, each in a fresh process (target ratio <= 1.5).

Arms alternate over ``--repeats`` rounds and the median is reported, since these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time

import torch

from _memory import PeakRSS  # benchmarks/_memory.py (this script's folder is on sys.path)


def texts_for_benchmark(n: int, seed: int = 0, sentences_per_text: int = 2) -> list[str]:
    """``n`` short texts built from the bundled examples' sentences (seeded)."""
    from fac_metric.examples import load_example

    sentences = []
    for name in ("ifeval_anchor", "ifeval_heldout", "brown_unseen"):
        for text in load_example(name):
            sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 20 <= len(s.strip()) <= 200]
    rng = random.Random(seed)
    return [" ".join(rng.choice(sentences) for _ in range(sentences_per_text)) for _ in range(n)]


def bare_forward(space, texts, batch_size):
    reader = space.reader
    tokenized = reader.tokenize_all(texts)
    with torch.inference_mode():
        for ids in reader.batches(tokenized, batch_size):
            reader.read(tokenized, ids)


def naive(space, texts, batch_size):
    """What one writes without fac: full forward, hidden_states, SAE on all positions, Python max."""
    reader, sae = space.reader, space.sae
    tokenized = reader.tokenize_all(texts)
    layer = int(reader.hook.rsplit(".", 1)[1]) + 1
    pooled = []
    with torch.inference_mode():
        for start in range(0, len(tokenized), batch_size):  # input order: no length bucketing
            chunk = tokenized[start : start + batch_size]
            ids, mask, _ = reader.pad(tokenized, list(range(start, start + len(chunk))))
            hidden = reader.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            z = sae.encode(hidden.float())  # every padded position
            for r, t in enumerate(chunk):
                best = None
                for pos, counted in enumerate(t.counted):
                    if counted:
                        best = z[r, pos] if best is None else torch.maximum(best, z[r, pos])
                pooled.append(best)


def ours(space, texts, batch_size):
    space.encode(texts, batch_size=batch_size, show_progress=False)


def throughput(args) -> dict:
    from fac_metric import get_feature_space

    space = get_feature_space(args.feature_space)
    texts = texts_for_benchmark(args.n_texts)
    arms = {"fac_encode": ours, "bare_forward_to_layer": bare_forward, "naive_full_forward": naive}
    rates = {name: [] for name in arms}
    # Every arm runs the same tokens (padding excluded): count them once, outside the timing.
    n_tokens = sum(len(t.input_ids) for t in space.reader.tokenize_all(texts))
    ours(space, texts[:64], args.batch_size)  # warm-up
    for _ in range(args.repeats):
        for name, fn in arms.items():
            t0 = time.perf_counter()
            fn(space, texts, args.batch_size)
            rates[name].append(n_tokens / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "texts": len(texts), "batch_size": args.batch_size, "dtype": str(space.reader.dtype), "threads": torch.get_num_threads(),
        "tokens_per_s": {k: round(v) for k, v in med.items()},
        "encode_over_bare_forward": round(med["fac_encode"] / med["bare_forward_to_layer"], 3),
        "encode_over_naive": round(med["fac_encode"] / med["naive_full_forward"], 2),
    }


def _rss_child(n_texts: int, feature_space: str | None) -> None:
    """Run in a fresh process: load, note RSS, stream a profile, print the peak RSS growth.

    RSS is sampled every 20 ms while profiling (the process-lifetime peak would be the
    model load's transient, hiding what profiling adds). One raw sentence per text keeps 20k
    texts to a few minutes on 2 cores: what grows with the number of texts is what this
    measures, not the cost per token.
    """
    from fac_metric.space.feature_space import FeatureSpace

    space = FeatureSpace.load(feature_space, text_format="raw")
    texts = texts_for_benchmark(n_texts, sentences_per_text=1)
    space.encode(texts[:256], show_progress=False)  # warm-up: allocator pools, lazy imports
    with PeakRSS(interval=0.02) as rss:
        space.profile(iter(texts), show_progress=False)
    print(json.dumps({"n_texts": n_texts, "baseline_mb": rss.base, "growth_mb": rss.growth}))


def dtype_speed(args) -> dict:
    """``FeatureSpace.encode`` in bf16 vs fp32 on the same texts, alternating, medians."""
    from fac_metric.space.feature_space import FeatureSpace

    texts = texts_for_benchmark(args.n_texts)
    spaces = {d: FeatureSpace.load(args.feature_space, dtype=d) for d in ("float32", "bfloat16")}
    n_tokens = sum(len(t.input_ids) for t in spaces["float32"].reader.tokenize_all(texts))
    rates = {d: [] for d in spaces}
    for _ in range(args.repeats):
        for d, space in spaces.items():
            t0 = time.perf_counter()
            space.encode(texts, batch_size=args.batch_size, show_progress=False)
            rates[d].append(n_tokens / (time.perf_counter() - t0))
    med = {d: statistics.median(v) for d, v in rates.items()}
    return {"tokens_per_s": {d: round(v) for d, v in med.items()},
            "bf16_over_fp32": round(med["bfloat16"] / med["float32"], 2)}


def memory(args) -> dict:
    out = {}
    for n in (args.small, args.large):
        cmd = [sys.executable, __file__, "--rss-child", str(n)]
        if args.feature_space:
            cmd += ["--feature-space", args.feature_space]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        out[n] = json.loads(line)
    growth_small, growth_large = out[args.small]["growth_mb"], out[args.large]["growth_mb"]
    return {
        "texts": [args.small, args.large],
        "peak_rss_growth_mb": [round(growth_small, 1), round(growth_large, 1)],
        "baseline_rss_mb": round(out[args.small]["baseline_mb"], 1),
        "growth_ratio_large_over_small": round(growth_large / max(growth_small, 1.0), 2),
        "note": "growth below 1 MB counts as 1 MB in the ratio",
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--feature-space")
    p.add_argument("--n-texts", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--large", type=int, default=20000)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--compare-dtypes", action="store_true", help="also time encode in bf16 vs fp32")
    p.add_argument("--rss-child", type=int)
    args = p.parse_args()
    if args.rss_child:
        _rss_child(args.rss_child, args.feature_space)
        return
    result = {} if args.skip_throughput else {"throughput": throughput(args)}
    if args.compare_dtypes:
        result["dtypes"] = dtype_speed(args)
    if not args.skip_memory:
        result["memory"] = memory(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
