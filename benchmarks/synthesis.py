"""Synthesis: two-step contrastive vs one-step prompting, and the loop's overhead over bare generation.

    python benchmarks/synthesis.py                  # the first 24 missing features (~22 min on 1 thread)
    python benchmarks/synthesis.py --features 4     # a quick look

Data: the first ``--train-rows`` (40) Brown passages bundled with fac as the training set, the
300 bundled IFEval prompts as the anchor; the embedded SmolLM2-135M-Instruct as the generator
(``LocalGenerator``, batch 8), one object shared by both arms; default feature space, δ and
relevance. Each arm is one ``fac_datasets_ext.augment`` call in its own fresh ``cache_dir`` (a
run folder journals the generator's answers: reusing one would replay them instead of
generating) over the same features, the first ``--features`` missing ones (``max_features``),
with the same seed and ``samples_per_feature``, so the same number of generator calls per
feature (2 step-1 + ``samples_per_feature`` step-2 draws, or ``2 + samples_per_feature``
one-step draws). Measured side by side in one run:

1. Acceptance rate: of the samples that can become rows (step-2 samples in the contrastive
   arm, where step-1 candidates only form the good/bad pair; every one-step sample), the share
   whose target feature fires above δ (``passed`` in ``attempts.jsonl``); also the share accepted
   after dedup. Target: contrastive >= 1.5x one-step.
2. Missing features covered per 100 generator calls: features with at least one accepted row ÷
   all the arm's generator calls x 100, both arms, and their ratio.
3. Synthesis throughput ÷ bare batched ``generate`` throughput (target >= 0.8). The generator
   is wrapped in a recording ``Generator`` that forwards every ``complete(prompts, seeds, **kwargs)``
   call (``generate`` goes through it) to the real one and keeps the call; ``Synthesizer.run`` (describing each feature,
   drawing, encoding and verifying each sample, dedup, journal writes; not the encoding of the
   data and anchor, nor FAC before/after) is timed in the contrastive arm. Right after, in the
   same process, the recorded calls are replayed on the bare generator and timed. Seeds are per
   feature and step, so the replay draws the same completions (checked, and reported).
   Ratio = (completion tokens / synthesis time) ÷ (completion tokens / replay time).

A tiny ``generate`` warms the model up before the arms. The one-step arm runs first, then the
contrastive arm, then the replay. Prints the absolute figures, the machine (``nproc``, torch
threads) and the command; ``--json PATH`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ACCEPTANCE_TARGET = 1.5
THROUGHPUT_TARGET = 0.8


def make_recorder(inner):
    """A ``Generator`` that forwards to ``inner`` and keeps each ``complete`` call's arguments and time."""
    from fac_metric.llm import Generator

    class Recording(Generator):
        supports_scoring = inner.supports_scoring

        def __init__(self) -> None:
            self.inner = inner
            self.name = inner.name  # the run folder's key: the same as the bare generator's
            self.stats = inner.stats
            self.batch_size = getattr(inner, "batch_size", None)  # the synthesis loop's wave size
            self.calls: list[tuple[list, dict, list]] = []
            self.recording = False
            self.seconds = 0.0

        def complete(self, prompts, seeds, **kwargs):  # generate() comes here too
            start = time.perf_counter()
            out = self.inner.complete(prompts, seeds, **kwargs)
            self.seconds += time.perf_counter() - start
            if self.recording:
                kwargs.pop("on_answer", None)  # the journal's callback: not part of the request
                self.calls.append((list(prompts), [list(s) for s in seeds], dict(kwargs), out))
            return out

        def score(self, prompt, options):
            return self.inner.score(prompt, options)

    return Recording()


@contextmanager
def timed_synthesis(box: dict):
    """Time every ``Synthesizer.run`` into ``box['seconds']`` while inside (patched on the class)."""
    from fac_datasets_ext.synthesis import Synthesizer

    original = Synthesizer.run

    def run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            box["seconds"] = box.get("seconds", 0.0) + time.perf_counter() - start

    Synthesizer.run = run
    try:
        yield box
    finally:
        Synthesizer.run = original


def run_arm(name: str, contrastive: bool, train, anchor, gen, args, root: Path) -> dict:
    import fac_datasets_ext

    before = (gen.stats.calls, gen.stats.completion_tokens, gen.seconds)
    gen.recording = contrastive
    box: dict = {}
    start = time.perf_counter()
    with timed_synthesis(box):
        res = fac_datasets_ext.augment(train, anchor, budget=None, max_features=args.features,
                                       samples_per_feature=args.samples_per_feature, generator=gen, seed=args.seed,
                                       temperature=args.temperature,
                                       cache_dir=root / name, contrastive=contrastive, show_progress=False)
    wall = time.perf_counter() - start
    gen.recording = False
    attempts = [json.loads(line) for line in open(res.run_dir / "attempts.jsonl", encoding="utf-8")]
    final_step = "step2" if contrastive else "one_step"
    final = [a for a in attempts if a["step"] == final_step]
    syn = res.report["synthesis"]
    covered = sorted({a["feature"] for a in final if a["accepted"]})
    calls = syn["calls"]
    out = {
        "arm": name, "run_dir": str(res.run_dir), "features_tried": syn["features_tried"],
        "calls": calls, "generator_calls_counted": gen.stats.calls - before[0],
        "completion_tokens": gen.stats.completion_tokens - before[1],
        "samples": len(final), "passed": sum(a["passed"] for a in final),
        "accepted": sum(a["accepted"] for a in final), "features_covered": len(covered),
        "fac_before": res.report["fac_before"], "fac_after": res.report["fac_after"],
        "synthesis_s": box.get("seconds", 0.0), "generate_s": gen.seconds - before[2], "augment_s": wall,
        "reasons": syn["rejected"],
    }
    out["pass_rate"] = out["passed"] / out["samples"] if out["samples"] else 0.0
    out["accept_rate"] = out["accepted"] / out["samples"] if out["samples"] else 0.0
    out["covered_per_100_calls"] = 100.0 * len(covered) / calls if calls else 0.0
    if contrastive:
        step1 = [a for a in attempts if a["step"] == "step1"]
        out["step1_samples"], out["step1_passed"] = len(step1), sum(a["passed"] for a in step1)
    return out


def replay(gen, calls) -> dict:
    """The recorded ``complete`` calls again, on the bare generator, timed; and whether they match."""
    tokens0 = gen.stats.completion_tokens
    same = total = 0
    start = time.perf_counter()
    answers = [gen.complete(prompts, seeds, **kwargs) for prompts, seeds, kwargs, _ in calls]
    seconds = time.perf_counter() - start
    for (*_, recorded), again in zip(calls, answers):
        for a, b in zip(recorded, again):
            total += len(a)
            same += sum(x == y for x, y in zip(a, b))
    return {"seconds": seconds, "completion_tokens": gen.stats.completion_tokens - tokens0,
            "completions": total, "identical": same, "generate_calls": len(calls)}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf") if a else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=24, help="missing features per arm (max_features)")
    parser.add_argument("--samples-per-feature", type=int, default=2)
    parser.add_argument("--train-rows", type=int, default=40, help="Brown passages in the training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of both arms")
    parser.add_argument("--work-dir", default=None, help="where the two run folders go (default: a fresh temp dir)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import datasets
    import torch

    from fac_metric.examples import load_example
    from fac_metric.llm import LocalGenerator

    t0 = time.perf_counter()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    print(f"command: {command}")
    print(f"machine: nproc={os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}), "
          f"torch threads={torch.get_num_threads()}, torch {torch.__version__}")
    train = datasets.Dataset.from_dict({"text": load_example("brown_unseen")[: args.train_rows]})
    anchor = load_example("ifeval_anchor")
    bare = LocalGenerator()
    bare.generate(["Say hello."] * 8, max_new_tokens=8, seed=0)  # warm-up, not counted
    gen = make_recorder(bare)
    root = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="fac_bench_synthesis_"))
    for name in ("one_step", "contrastive"):
        if (root / name).exists():
            raise SystemExit(f"{root / name} exists: each arm needs a fresh cache_dir (pass another --work-dir)")
    print(f"run folders under {root}; generator {bare.name}, batch {bare.batch_size}")

    one = run_arm("one_step", False, train, anchor, gen, args, root)
    print(f"one-step arm: {one['augment_s']:.0f} s", flush=True)
    two = run_arm("contrastive", True, train, anchor, gen, args, root)
    print(f"contrastive arm: {two['augment_s']:.0f} s", flush=True)
    rep = replay(bare, gen.calls)
    print(f"bare replay: {rep['seconds']:.0f} s", flush=True)

    synth_tps = _ratio(two["completion_tokens"], two["synthesis_s"])
    bare_tps = _ratio(rep["completion_tokens"], rep["seconds"])
    acc_ratio = _ratio(two["pass_rate"], one["pass_rate"])
    cov_ratio = _ratio(two["covered_per_100_calls"], one["covered_per_100_calls"])
    tp_ratio = _ratio(synth_tps, bare_tps)

    print()
    print(f"features tried: {two['features_tried']} (contrastive) / {one['features_tried']} (one-step); "
          f"samples_per_feature={args.samples_per_feature}; train rows {len(train)}, anchor {len(anchor)}")
    rows = [
        ("generator calls", one["calls"], two["calls"]),
        ("completion tokens", one["completion_tokens"], two["completion_tokens"]),
        ("samples that can become rows", one["samples"], two["samples"]),
        ("passed (target > δ)", one["passed"], two["passed"]),
        ("accepted (after dedup)", one["accepted"], two["accepted"]),
        ("acceptance rate: passed / samples", f"{one['pass_rate']:.3f}", f"{two['pass_rate']:.3f}"),
        ("accepted / samples", f"{one['accept_rate']:.3f}", f"{two['accept_rate']:.3f}"),
        ("features covered (>= 1 accepted row)", one["features_covered"], two["features_covered"]),
        ("covered per 100 calls", f"{one['covered_per_100_calls']:.2f}", f"{two['covered_per_100_calls']:.2f}"),
        ("FAC before -> after", f"{one['fac_before']:.4f} -> {one['fac_after']:.4f}",
         f"{two['fac_before']:.4f} -> {two['fac_after']:.4f}"),
        ("Synthesizer.run seconds", f"{one['synthesis_s']:.1f}", f"{two['synthesis_s']:.1f}"),
        ("  of which generate() seconds", f"{one['generate_s']:.1f}", f"{two['generate_s']:.1f}"),
        ("augment seconds (with encoding)", f"{one['augment_s']:.1f}", f"{two['augment_s']:.1f}"),
    ]
    print(f"{'':40s} {'one-step':>22s} {'contrastive':>22s}")
    for label, a, b in rows:
        print(f"{label:40s} {str(a):>22s} {str(b):>22s}")
    print(f"contrastive step 1: {two['step1_passed']}/{two['step1_samples']} candidates passed (pair only, never rows)")
    print(f"rejections: one-step {one['reasons']}; contrastive {two['reasons']}")
    print()
    print(f"1. acceptance (passed) contrastive / one-step: {acc_ratio:.2f}x "
          f"(target >= {ACCEPTANCE_TARGET}x: {'met' if acc_ratio >= ACCEPTANCE_TARGET else 'NOT met'}); "
          f"after dedup: {_ratio(two['accept_rate'], one['accept_rate']):.2f}x")
    print(f"2. features covered per 100 calls contrastive / one-step: {cov_ratio:.2f}x")
    print(f"3. synthesis {synth_tps:.1f} tok/s ({two['completion_tokens']} tokens in {two['synthesis_s']:.1f} s) / "
          f"bare replay {bare_tps:.1f} tok/s ({rep['completion_tokens']} tokens in {rep['seconds']:.1f} s, "
          f"{rep['generate_calls']} generate calls, {rep['identical']}/{rep['completions']} completions identical) "
          f"= {tp_ratio:.3f} (target >= {THROUGHPUT_TARGET}: {'met' if tp_ratio >= THROUGHPUT_TARGET else 'NOT met'})")
    print(f"   cross-check, same moments: generate() took {two['generate_s']:.1f} s of the contrastive "
          f"Synthesizer.run's {two['synthesis_s']:.1f} s = {_ratio(two['generate_s'], two['synthesis_s']):.3f} "
          f"(the replay ratio also moves with this machine's load between loop and replay)")
    total = time.perf_counter() - t0
    print(f"wall time: {total:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": command, "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "one_step": one, "contrastive": two, "replay": rep, "acceptance_ratio": acc_ratio,
            "covered_ratio": cov_ratio, "synthesis_tok_s": synth_tps, "bare_tok_s": bare_tps,
            "generate_share_of_loop": _ratio(two["generate_s"], two["synthesis_s"]),
            "throughput_ratio": tp_ratio, "wall_s": total}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
