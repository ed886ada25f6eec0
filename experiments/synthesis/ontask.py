"""Do accepted rows read like the task? The on-task share of FAC Synthesis, before and after.

    python -m experiments.synthesis.ontask --arm after --budget 20     # the shipped prompts and gate
    python -m experiments.synthesis.ontask --arm before --budget 6     # the earlier prompts, no gate

The new user's case of issue 12: a training set of 40 IFEval-style requests (the bundled
``ifeval_heldout``, first 40), the anchor of 300 bundled IFEval prompts, the embedded generator,
seed 0, everything else default. ``before`` runs the prompt templates shipped until this change
(``experiments/synthesis/before/``: they describe "an internal feature" of "a language model")
without the on-task gate; ``after`` runs the shipped few-shot templates with the gate. Writes
``<out>/ontask-<arm>-<budget>.json``: wall time, the synthesis report, and each accepted row
with the rubric's verdict (:mod:`experiments.synthesis.rubric`). Each run has its own fresh
``cache_dir`` under ``--work``, emptied first, so nothing is replayed from an earlier run
(``--resume``: continue a killed run from its journal instead).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

HERE = Path(__file__).parent


def run(arm: str, budget: int, work: Path, seed: int = 0, fresh: bool = True) -> dict:
    import datasets

    from experiments.synthesis.rubric import rubric
    from fac_datasets_ext.augmentation import augment
    from fac_metric.examples import load_example

    data = datasets.Dataset.from_dict({"prompt": load_example("ifeval_heldout")[:40]})
    anchor = load_example("ifeval_anchor")
    cache = work / f"{arm}-{budget}-{seed}"
    if fresh:
        shutil.rmtree(cache, ignore_errors=True)
    options = {"templates": str(HERE / "before"), "on_task": False} if arm == "before" else {}
    start = time.perf_counter()
    out = augment(data, anchor, budget=budget, seed=seed, cache_dir=cache, show_progress=False, **options)
    seconds = time.perf_counter() - start
    rows = []
    for r in out.dataset.filter(lambda r: r["fac_synthetic"]):
        on_task, why = rubric(r["prompt"])
        rows.append({"feature": r["fac_target_feature"], "text": r["prompt"], "on_task": on_task, "rubric": why})
    gate = gate_verdicts(out.run_dir, [r["text"] for r in rows])
    for r, verdict in zip(rows, gate):
        r["gate"] = verdict
    return {"arm": arm, "budget": budget, "seed": seed, "seconds": round(seconds, 1),
            "fac_before": out.report["fac_before"], "fac_after": out.report["fac_after"],
            "synthesis": out.report["synthesis"], "rows": rows,
            "on_task_share": (sum(r["on_task"] for r in rows) / len(rows)) if rows else None,
            "gate_accepts": sum(r["gate"] for r in rows)}


def gate_verdicts(run_dir: Path, texts: list[str]) -> list[bool]:
    """Whether the on-task gate accepts each text, rebuilt from a run folder's anchor encodings
    (so the *before* arm, which ran without the gate, is judged by the same gate)."""
    from fac_datasets_ext.augmentation import _task_gate
    from fac_metric import FeatureProfile, SparseActivations, get_feature_space

    space = get_feature_space(None, dtype="float32")
    thr = space.threshold
    blocks = sorted((run_dir / "encoded" / "anchor").glob("block-*.safetensors"))
    anchor = SparseActivations.concat([SparseActivations.load(b) for b in blocks]).above(thr.per_latent)
    gate = _task_gate(FeatureProfile.load(run_dir / "profiles" / "anchor"), anchor, space, thr)
    acts = space.encode(texts, show_progress=False) if texts else None
    return [gate.accepts(acts.row(i)[0][acts.row(i)[1] > thr.per_latent[acts.row(i)[0]]]) for i in range(len(texts))]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m experiments.synthesis.ontask", description=__doc__.split("\n")[0])
    p.add_argument("--arm", choices=("before", "after"), default="after")
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=".work/ontask")
    p.add_argument("--out", default="docs/synthesis")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run from its journal (its wall time is then this run's only)")
    args = p.parse_args(argv)
    result = run(args.arm, args.budget, Path(args.work), args.seed, fresh=not args.resume)
    result["resumed"] = args.resume
    out = Path(args.out) / f"ontask-{args.arm}-{args.budget}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    syn = result["synthesis"]
    print(f"{args.arm} budget {args.budget}: {len(result['rows'])} rows in {result['seconds']:.0f} s, "
          f"{syn['calls']} calls, on-task by the rubric {result['on_task_share']}, "
          f"off-task rejected by the gate {syn['off_task']}; wrote {out}")


if __name__ == "__main__":
    main()
