"""How long ``fac --help`` (and each subcommand's ``--help``) takes in a fresh process.

    python benchmarks/cli_startup.py            # 5 runs each, medians

Target: under 1 s each. Each run starts a new interpreter (what a user waits for), side by side
with a bare ``python -c pass`` so the ratio shows what fac adds to interpreter start-up on this
machine, whatever its speed. Also printed: whether torch, transformers or datasets were imported
(they must not be: importing them is what made help take 8-14 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = [[], ["score"], ["explain"], ["augment"], ["spans"], ["train-sae"]]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    bare = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(args.repeats))
    rows = {}
    for cmd in COMMANDS:
        argv = [sys.executable, "-m", "fac_datasets_ext.cli", *cmd, "--help"]
        rows[" ".join(["fac", *cmd, "--help"])] = statistics.median(timed(argv) for _ in range(args.repeats))
    probe = ("import sys; from fac_datasets_ext.cli import build_parser; build_parser().format_help(); "
             "print([m for m in ('torch', 'transformers', 'datasets') if m in sys.modules])")
    heavy = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print(json.dumps({"python_start_s": round(bare, 3),
                      "help_s": {k: round(v, 3) for k, v in rows.items()},
                      "help_over_python_start": {k: round(v / bare, 1) for k, v in rows.items()},
                      "slowest_under_1s": max(rows.values()) < 1.0, "heavy_modules_imported": heavy}, indent=2))


if __name__ == "__main__":
    main()
