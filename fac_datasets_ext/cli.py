"""The ``fac`` command: ``fac score``, ``fac train-sae`` (more subcommands come with later features).

Owns: argument parsing, reading files through ``datasets``, the one-line summary on stdout and
turning fac's own errors into a one-line message with exit code 2 (never a traceback). Must
not: hold measurement logic; it calls ``fac_metric``.

    fac score train.jsonl --anchor task.jsonl --out fac_report
    fac train-sae --out my_space --layer 15
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="FAC of a dataset against an anchor, with a report")
    p.add_argument("data", help="jsonl/json/csv/parquet/txt file, or a folder saved with Dataset.save_to_disk")
    p.add_argument("--anchor", help="the task's representative data (same formats), or a saved profile folder")
    p.add_argument("--column", help="column holding the texts (default: text, messages, prompt, ...)")
    p.add_argument("--anchor-column", help="column of the anchor's texts (default: as --column)")
    p.add_argument("--feature-space", help="feature-space folder or Hub repo id (default: the embedded one)")
    p.add_argument("--threshold", type=float, help="δ relative to each latent's scale (default: the space's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="fac_report", help="folder for report.md, result.json, coverage.png")
    p.add_argument("--save-profiles", action="store_true", help="also save data/anchor profiles in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_train(sub) -> None:
    p = sub.add_parser("train-sae", help="train a TopK SAE on one layer of a causal LM into a feature-space folder")
    p.add_argument("--out", required=True, help="feature-space folder to write")
    p.add_argument("--work-dir", default=".work/train", help="residual shards and checkpoints (resume from here)")
    p.add_argument("--model", default=None, help="causal LM: local folder or Hub id (default: SmolLM2-135M-Instruct)")
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--data", nargs="*", help="training files (default: the package corpora of docs/feature_space.md)")
    p.add_argument("--column", help="text column of --data files (strings are encoded raw, chats as chats)")
    p.add_argument("--d-sae", type=int, default=8192)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--lr", type=float, default=1.2e-3)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=1_350_000, help="size of the default corpus, in tokens")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")


def cmd_score(args) -> int:
    from fac_metric.profile import FeatureProfile
    from fac_metric.report import summary_line, write_report
    from fac_metric.scoring import score

    from .io import read_texts

    data = read_texts(args.data, args.column)
    anchor = None
    if args.anchor is not None:
        anchor = args.anchor if FeatureProfile.is_saved(args.anchor) else read_texts(args.anchor, args.anchor_column or args.column)
    out = score(data, anchor, feature_space=args.feature_space, threshold=args.threshold,
                batch_size=args.batch_size, show_progress=not args.quiet)
    write_report(out, args.out, data_name=str(args.data), anchor_name=str(args.anchor))
    if args.save_profiles:
        out.data_profile.save(Path(args.out) / "data_profile")
        if out.anchor_profile is not None:
            out.anchor_profile.save(Path(args.out) / "anchor_profile")
    print(summary_line(out))
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_train_sae(args) -> int:
    from fac_metric.models import DEFAULT_LM
    from fac_metric.sae_training import SAETrainConfig
    from fac_metric.train_space import TrainSpaceArgs, run

    from .io import load_rows, pick_column

    rows = None
    if args.data:
        rows = []
        for path in args.data:
            ds = load_rows(path)
            col = pick_column(ds, args.column)
            rows += [{"messages": t} if isinstance(t, list) else {"text": t} for t in ds[col]]
    cfg = SAETrainConfig(d_sae=args.d_sae, k=args.k, lr=args.lr, epochs=args.epochs, seed=args.seed)
    quality = run(TrainSpaceArgs(out=Path(args.out), work_dir=Path(args.work_dir), model=args.model or DEFAULT_LM,
                                 layer=args.layer, rows=rows, dtype=args.dtype, max_tokens=args.max_tokens, train=cfg,
                                 show_progress=not args.quiet))
    print(json.dumps(quality, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fac", description="Feature Activation Coverage for training data")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_score(sub)
    _add_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fac_metric.errors import FacError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"score": cmd_score, "train-sae": cmd_train_sae}[args.command](args)
    except FacError as err:
        print(f"fac {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
