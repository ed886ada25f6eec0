"""Reusing the chat scaffolding's key/value cache: ``FeatureSpace.encode`` tokens/s on short chat
prompts with the shared prefix run once per batch vs run with every text, side by side in one run.

    python benchmarks/prefix_cache.py                  # 512 prompts, 3 rounds (~4 min on 2 cores)
    python benchmarks/prefix_cache.py --n 256 --repeats 2

With the chat rule every text carries the same template prefix (system prompt and role markers,
24 tokens for SmolLM2), which no text counts. Target: >= 1.3x on short prompts. Counted tokens/s
are reported (what the texts hold); arms alternate and the median of each is taken, since these
machines are noisy. Also prints the largest difference between the two arms' activations.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="prompts (short IFEval instructions)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from fac_metric import get_feature_space
    from fac_metric.examples import load_example

    space = get_feature_space(None, dtype="float32")
    prompts = [t for name in ("ifeval_anchor", "ifeval_heldout") for t in load_example(name) if len(t) <= 400]
    prompts = (prompts * (args.n // len(prompts) + 1))[: args.n]
    tokenized = space.reader.tokenize_all(prompts)
    counted = sum(sum(t.counted) for t in tokenized)
    fed = sum(len(t.input_ids) for t in tokenized)
    prefix = space.reader.shared_prefix(tokenized, list(range(len(tokenized))))
    print(f"{len(prompts)} prompts, {counted} counted tokens, {fed} fed without reuse "
          f"({fed / counted:.2f}x), shared prefix {prefix} tokens, {torch.get_num_threads()} threads")

    def run(reuse: bool):
        space.reader.reuse_prefix = reuse
        start = time.perf_counter()
        acts = space.encode(prompts, batch_size=args.batch_size, show_progress=False)
        return time.perf_counter() - start, acts

    run(True)  # warm-up: weights paged in, the prefix cached
    times: dict[bool, list[float]] = {False: [], True: []}
    acts = {}
    for _ in range(args.repeats):
        for reuse in (False, True):
            seconds, acts[reuse] = run(reuse)
            times[reuse].append(seconds)
    space.reader.reuse_prefix = True
    rate = {reuse: counted / statistics.median(t) for reuse, t in times.items()}
    diff = np.abs(acts[True].to_dense() - acts[False].to_dense())
    same = (acts[True].to_dense() > 0) == (acts[False].to_dense() > 0)
    print(f"every token:      {rate[False]:8.0f} counted tokens/s")
    print(f"prefix reused:    {rate[True]:8.0f} counted tokens/s")
    print(f"ratio: {rate[True] / rate[False]:.2f}x (target >= 1.3x); activations: max |diff| {diff.max():.2e} "
          f"(largest activation {acts[False].values.max():.1f}), same active latents in {same.mean():.5%} of cells")


if __name__ == "__main__":
    main()
