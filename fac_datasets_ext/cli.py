"""The ``fac`` command: ``fac score``, ``fac explain``, ``fac augment``, ``fac spans``, ``fac train-sae``.

Owns: argument parsing (each option shared by several commands defined once), reading files
through ``datasets``, the one-line summary on stdout and turning fac's own errors into a
one-line message with exit code 2 (a traceback only with ``--debug``). Must not: hold
measurement logic (it calls ``fac_metric``'s public names), or import anything heavy before a
command runs: ``fac --help`` answers in well under a second (``benchmarks/cli_startup.py``).

    fac score train.jsonl --anchor task.jsonl --out fac_report
    fac score train.jsonl --anchor task.jsonl --relevance judge --guideline instruction_following \
        --generator http://127.0.0.1:8000/v1
    fac explain train.jsonl --anchor task.jsonl --generator local -n 10
    fac augment train.jsonl --anchor task.jsonl --budget 200 -o augmented.jsonl
    accelerate launch --num_processes 2 -m fac_datasets_ext.cli augment train.jsonl --anchor task.jsonl -o out.jsonl
    fac train-sae --out my_space --layer 15
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

os.environ.setdefault("WANDB_MODE", "disabled")


DATA_FORMATS = ("jsonl/json/csv/parquet/txt file, a folder saved with Dataset.save_to_disk, a dataset repo folder, "
                "or a Hub dataset id namespace/name (--split, --config, --revision)")


def _add_hub_options(p, role: str = "") -> None:
    """``--[role-]split``, ``--[role-]config``, ``--[role-]revision``: the part of a Hub dataset to read."""
    flag, what = (f"--{role}-", f"the {role}'s") if role else ("--", "the data's")
    p.add_argument(f"{flag}split", help=f"split of {what} Hub dataset or repo folder (default: train, or its only split)")
    p.add_argument(f"{flag}config", help=f"config (subset) of {what} Hub dataset")
    p.add_argument(f"{flag}revision", help=f"branch, tag or commit of {what} Hub dataset")


def _hub(args, role: str = ""):
    """The ``HubOptions`` of one role's ``--split``/``--config``/``--revision``."""
    from .io import HubOptions

    prefix = f"{role}_" if role else ""
    return HubOptions(getattr(args, f"{prefix}split", None), getattr(args, f"{prefix}config", None),
                      getattr(args, f"{prefix}revision", None))


def _add_data_options(p, *, anchor_required: bool = False) -> None:
    """What to read: the anchor and the columns (texts are chosen by the data's shape)."""
    p.add_argument("--anchor", required=anchor_required,
                   help="the task's representative data (same formats)" + ("" if anchor_required else
                                                                           ", or a saved profile folder"))
    p.add_argument("--column", help="column to encode (default: chosen by the data's shape: text, messages, "
                                    "prompt/chosen/rejected, instruction/output; see fac_datasets_ext.shapes)")
    p.add_argument("--anchor-column", help="column of the anchor's texts (default: chosen by the anchor's shape)")
    _add_hub_options(p)
    _add_hub_options(p, "anchor")


def _add_space_options(p) -> None:
    """Where features are read, and at what δ."""
    p.add_argument("--feature-space", help="feature-space folder or Hub repo id (default: the embedded one)")
    p.add_argument("--threshold", type=float, help="δ, relative to each latent's scale (default: the space's, 1.5)")


def _add_generator_options(p, *, default: str | None, purpose: str) -> None:
    """The LLM a command prompts (``--generator`` is declared here only)."""
    p.add_argument("--generator", default=default,
                   help=f"LLM {purpose}: 'local' (the embedded SmolLM2), a model folder, or an OpenAI-compatible "
                        f"URL such as http://127.0.0.1:8000/v1 (default: {default or 'none'})")
    p.add_argument("--generator-model", help="model id at an HTTP --generator (default: the only one it serves)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="HTTP --generator: seconds one request may take in all, reading included (default 60)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="HTTP --generator: retries of a failed request (429, 5xx, network, timeout; default 3)")
    p.add_argument("--max-failures", type=int, default=8,
                   help="HTTP --generator: stop after this many completions in a row failed for good; what was "
                        "answered is kept and a rerun resumes (default 8)")


def _add_relevance_options(p) -> None:
    """How the task-relevant features are chosen (fac score, fac explain, fac augment)."""
    from fac_metric.measure import (DEFAULT_ALPHA, DEFAULT_MAX_JUDGED, DEFAULT_RELEVANCE, RELEVANCE_MODES,
                                    shipped_guidelines)

    p.add_argument("--relevance", choices=RELEVANCE_MODES, default=None,
                   help="how task-relevant features are chosen: contrast, a significance test against the "
                        "background or --contrast; judge: the --generator judges each feature; all: every "
                        f"non-generic anchor feature (default: {DEFAULT_RELEVANCE}; for fac score with "
                        "--coverage match and no --contrast, all)")
    p.add_argument("--contrast", help="contrast set for --relevance contrast (e.g. the negative class), same formats")
    p.add_argument("--contrast-column", help="column of the contrast set's texts (default: chosen by its shape)")
    _add_hub_options(p, "contrast")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="false-discovery rate of the contrast test")
    p.add_argument("--guideline", help=f"task guideline for --relevance judge: one of {shipped_guidelines()} or "
                                       "your own sentence")
    p.add_argument("--max-judged", type=int, default=DEFAULT_MAX_JUDGED,
                   help="judge only the anchor's N most frequent candidate features (caps LLM calls)")


def _add_run_options(p, *, batch: bool = True) -> None:
    if batch:
        p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass when encoding")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="FAC of a dataset against an anchor, with a report")
    p.add_argument("data", help=DATA_FORMATS)
    _add_data_options(p)
    _add_space_options(p)
    _add_relevance_options(p)
    _add_generator_options(p, default=None, purpose="that judges features for --relevance judge")
    p.add_argument("--label-column", help="with --anchor-label: the anchor file's column of class labels")
    p.add_argument("--anchor-label", help="the anchor is the anchor file's rows with this --label-column value; its "
                                          "other rows are the contrast set wherever relevance is contrast "
                                          "(--relevance contrast, or --coverage binary): a classifier's data in one file")
    p.add_argument("--out", default="fac_report", help="folder for report.md, report.html, result.json, coverage.png")
    p.add_argument("--save-profiles", action="store_true", help="also save data/anchor profiles in --out")
    from fac_metric.measure import COVERAGES, DEFAULT_COVERAGE

    p.add_argument("--coverage", choices=COVERAGES, default=DEFAULT_COVERAGE,
                   help="match (default): each anchor text's best overlap with one data text, averaged "
                        "(predicted training results best in docs/results.md; needs texts, not profiles); "
                        "binary: the paper's FAC")
    p.add_argument("--baselines", action="store_true",
                   help="also compute text-diversity and embedding baselines of the same texts (distinct-n, "
                        "self-BLEU, Vendi, cluster coverage, ...) beside FAC; needs pip install \"fac-metric[baselines]\"")
    _add_run_options(p)
    _add_processes_option(p)


def _at_least_one(value: str) -> int:
    """argparse type of a count of processes: a whole number >= 1 (0 or -2 would silently run one)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: a number of processes is 1 or more")
    return n


def _add_processes_option(p, work: str = "encode the data in N processes (CPU or one GPU each), the same result "
                                          "as one") -> None:
    p.add_argument("--processes", type=_at_least_one, default=1,
                   help=f"{work}: fac starts them itself (torchrun); under an accelerate launch / torchrun of your "
                        "own, leave it out")


def _add_train(sub) -> None:
    p = sub.add_parser("train-sae", help="train a TopK SAE on one layer of a causal LM into a feature-space folder")
    p.add_argument("--out", required=True, help="feature-space folder to write")
    p.add_argument("--work-dir", default=".work/train", help="residual shards and checkpoints (resume from here)")
    p.add_argument("--model", default=None, help="causal LM: local folder or Hub id (default: SmolLM2-135M-Instruct)")
    p.add_argument("--layer", type=int, default=15, help="decoder layer whose output the SAE reads (default 15)")
    p.add_argument("--data", nargs="*", help="training files (default: the package corpora of docs/feature_space.md)")
    p.add_argument("--column", help="text column of --data files (strings are encoded raw, chats as chats)")
    p.add_argument("--d-sae", type=int, default=8192, help="number of SAE latents (default 8192)")
    p.add_argument("--k", type=int, default=32, help="latents active per token in the TopK SAE (default 32)")
    p.add_argument("--lr", type=float, default=1.2e-3, help="learning rate (default 1.2e-3)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the residual shards (default 1)")
    p.add_argument("--max-tokens", type=int, default=1_350_000, help="size of the default corpus, in tokens")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="dtype the LM runs in while residuals are extracted (default float32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the SAE's initialisation and data order")
    p.add_argument("--device", default="auto",
                   help="where the LM reads and the SAE trains: auto (a CUDA GPU when present, else the CPU), cpu, cuda:N")
    p.add_argument("--stream-activations", action="store_true",
                   help="train from the residual shards on disk a buffer at a time, not all in RAM (large corpora or "
                        "models; another data order than the default recipe)")
    p.add_argument("--buffer-tokens", type=int, default=1_000_000,
                   help="with --stream-activations: residual rows shuffled together (memory: rows x hidden size x 2 bytes)")
    p.add_argument("--shard-texts", type=int, default=2048,
                   help="training rows per residual shard: what a killed run resumes from and what processes share")
    _add_run_options(p, batch=False)
    _add_processes_option(p, "read residuals and train the SAE in N processes (CPU or one GPU each; data parallel, "
                             "the steps of one process)")


def _add_spans(sub) -> None:
    p = sub.add_parser("spans", help="collect every feature's top-activating spans and LLM-free labels into a feature space")
    p.add_argument("data", nargs="*", help="corpus files (default: the default space's own training corpus)")
    p.add_argument("--feature-space", help="feature-space folder (default: the embedded one)")
    p.add_argument("--column", help="text column of the data files (default: chosen by the data's shape)")
    p.add_argument("--out", help="folder to write features.jsonl and stats into (default: the feature-space folder)")
    p.add_argument("--k", type=int, default=20, help="examples kept per feature while streaming (10 are stored)")
    p.add_argument("--max-tokens", type=int, default=600_000, help="cap on the default corpus, in tokens")
    p.add_argument("--work-dir", default=".work/train", help="where the default corpus is downloaded")
    _add_run_options(p)
    _add_processes_option(p)


def cmd_spans(args) -> int:
    import shutil

    from fac_metric import FacInputError
    from fac_metric.space import FeatureSpace, resolve_space_folder
    from fac_metric.training import TrainSpaceArgs, default_rows, describe, rows_within, split_heldout

    from fac_metric import Ranks

    if args.k < 1:
        raise FacInputError(f"--k {args.k}: keep at least 1 example per feature")
    ranks = Ranks.current()
    if args.processes > 1 and ranks.world == 1:
        return _spread(args.processes, args.argv)
    folder = resolve_space_folder(args.feature_space)
    space = FeatureSpace.load(folder)
    if args.data:
        rows = _read_rows(args.data, args.column)
    else:
        train_rows, _ = split_heldout(default_rows(Path(args.work_dir), TrainSpaceArgs.max_tokens))
        rows = rows_within(train_rows, args.max_tokens)
    heaps = describe(space, rows, k=args.k, batch_size=args.batch_size, show_progress=not args.quiet and ranks.main,
                     ranks=ranks)
    if not ranks.main:  # every process holds the merged spans; process 0 writes them
        return 0
    out = Path(args.out) if args.out else folder
    if out != folder:
        shutil.copytree(folder, out, dirs_exist_ok=True)
    space.save_facts(out)
    print(f"spans of {int((heaps.count > 0).sum())} features from {heaps.n_texts} texts written to {out / 'features.jsonl'}")
    return 0


def _preflight(args, out_folder: str | None) -> None:
    """What would fail after the work, checked before it: the output folder can be written, and
    the feature space (with the per-feature facts a report reads) loads."""
    from fac_metric import get_feature_space
    from fac_metric.meaning import check_writable_folder

    if out_folder is not None:
        check_writable_folder(out_folder, "--out")
    _ = get_feature_space(args.feature_space).facts  # a damaged features.jsonl fails now, not after encoding


def cmd_score(args) -> int:
    from fac_metric import Ranks
    from fac_metric.meaning import baseline_rows, summary_line, write_report

    ranks = Ranks.current()
    if args.processes > 1 and ranks.world == 1:
        # The output folder only: loading the space here would hold a model idle in this
        # process while the others work; process 0 runs the whole preflight.
        from fac_metric.meaning import check_writable_folder

        check_writable_folder(args.out, "--out")
        return _spread(args.processes, args.argv)
    if ranks.main:
        _preflight(args, args.out)
    out = _score(args, _texts_or_profile(args.data, args.column, _hub(args)), _anchor(args), baselines=args.baselines,
                 ranks=ranks)
    if out is None:  # another process' share: process 0 reports
        return 0
    res = write_report(out, args.out, data_name=str(args.data), anchor_name=str(args.anchor))
    if args.save_profiles:
        out.data_profile.save(Path(args.out) / "data_profile")
        if out.anchor_profile is not None:
            out.anchor_profile.save(Path(args.out) / "anchor_profile")
    print(summary_line(out))
    for warning in (out.relevance.warning if out.relevance is not None else None, res.get("form_warning")):
        if warning:
            print(f"warning: {warning}")
    if out.baselines is not None:
        rows = baseline_rows(res)
        width = max(len(name) for name, _, _ in rows)
        print("\n".join(f"  {name:<{width}}  {value:>7}" for name, value, _ in rows))
    print(f"report: {Path(args.out) / 'report.md'} and {Path(args.out) / 'report.html'}")
    return 0


def _anchor(args):
    """The anchor's texts (or saved profile); with ``--anchor-label`` its labelled rows, the
    other rows kept as ``args.label_contrast`` (the contrast set where relevance is contrast)."""
    if args.anchor_label is None and args.label_column is None:
        return _texts_or_profile(args.anchor, args.anchor_column, _hub(args, "anchor")) if args.anchor is not None else None
    from fac_metric import FacInputError

    from .io import read_labelled

    if args.anchor is None or args.anchor_label is None or args.label_column is None:
        raise FacInputError("--anchor-label and --label-column go together, with --anchor (a labelled file)")
    if args.contrast:
        raise FacInputError("--anchor-label makes the anchor file's other rows the contrast set: drop --contrast")
    anchor, args.label_contrast = read_labelled(args.anchor, args.label_column, args.anchor_label, args.anchor_column,
                                               _hub(args, "anchor"))
    return anchor


def _texts_or_profile(path: str, column: str | None, hub=None):
    """A saved profile folder (local, or pushed to the Hub) as it is, else the texts the rows of
    the file or dataset encode (by its shape)."""
    from fac_metric import FeatureProfile

    from .io import hub_profile, is_hub_id, read_texts

    if is_hub_id(path):
        pushed = hub_profile(path, hub.revision if hub else None)
        if pushed is not None:
            return str(pushed)
    return path if FeatureProfile.is_saved(path) else read_texts(path, column, hub)


def _generator(args, **kwargs):
    if not args.generator:
        return None
    from fac_metric.llm import get_generator

    if str(args.generator).startswith(("http://", "https://")):
        kwargs.update(timeout=args.timeout, max_retries=args.max_retries, max_failures=args.max_failures)
    return get_generator(args.generator, model=args.generator_model, **kwargs)


def _relevance(args, generator=None):
    """The ``RelevanceSpec`` of the relevance options, checked before anything is read or encoded."""
    from fac_metric import RelevanceSpec

    from fac_metric.measure import default_relevance

    contrast = _texts_or_profile(args.contrast, args.contrast_column, _hub(args, "contrast")) if args.contrast else None
    # Only `fac score` has --coverage; the commands that pick targets (explain, augment) count binary.
    mode = args.relevance or default_relevance(getattr(args, "coverage", "binary"), contrast)
    if mode == "contrast" and getattr(args, "label_contrast", None) is not None:
        # The labelled anchor file's other class. Not a reason to contrast by itself: with match
        # coverage, contrast against the other class ranked training sets no better than `all` on
        # the study task and far worse on the check task (docs/results.md, other_class rows).
        contrast = args.label_contrast
    return RelevanceSpec.of(mode, contrast=contrast, alpha=args.alpha, guideline=args.guideline,
                            max_judged=args.max_judged,
                            generator=(generator or _generator(args)) if mode == "judge" else None)


def _score(args, data, anchor, generator=None, *, baselines: bool = False, ranks=None):
    """``score()`` with the relevance options shared by ``fac score`` and ``fac explain``
    (``generator``: one already loaded, which then also judges: an LLM loads once per command)."""
    from fac_metric import score

    return score(data, anchor, feature_space=args.feature_space, threshold=args.threshold,
                 relevance=_relevance(args, generator), batch_size=args.batch_size,
                 show_progress=not args.quiet and (ranks is None or ranks.main),
                 baselines=baselines, coverage=getattr(args, "coverage", "binary"), ranks=ranks)


def _spread(n: int, argv: list[str]) -> int:
    """Run this very command in ``n`` processes and return their exit status.

    ``torch.distributed.run`` (torchrun) starts them on one machine, on CPU (gloo) or one GPU
    each; ``accelerate launch`` would need ``--multi_gpu`` to start more than one on a CPU, which
    surprises everyone. Each process gets an equal share of the cores (two CPU-heavy processes
    on all cores each crawl). The same command without ``--processes`` is what each runs.
    """
    import subprocess

    from fac_metric import FacInputError

    if n > (os.cpu_count() or 1) and not _cuda_count():
        raise FacInputError(f"--processes {n}: this machine has {os.cpu_count()} CPU cores and no GPU")
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // n))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "fac_datasets_ext.cli", *_without_processes(argv)]
    if subprocess.run(cmd, env=env).returncode:
        print(f"fac: error: one of the {n} processes failed: its message is above", file=sys.stderr)
        return 2
    return 0


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _without_processes(argv: list[str]) -> list[str]:
    """``argv`` less ``--processes N`` / ``--processes=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return out


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="what missing (or given) features mean and where they fire, as a report")
    p.add_argument("data", nargs="?", help="dataset whose missing features to explain (as in `fac score`)")
    p.add_argument("--features", help="comma-separated feature ids to explain instead of a dataset's missing ones")
    _add_data_options(p)
    _add_space_options(p)
    _add_relevance_options(p)
    _add_generator_options(p, default=None, purpose="that explains features (and judges them for --relevance judge)")
    p.add_argument("-n", "--n-features", type=int, default=20, help="missing features to explain (default 20)")
    p.add_argument("--out", default="fac_explain", help="report folder (with data); ignored with --features")
    _add_run_options(p)


def cmd_explain(args) -> int:
    from fac_metric import FacInputError, get_feature_space
    from fac_metric.meaning import explain_features, render_spans, summary_line, top_spans, write_report

    from .io import read_texts

    gen = _generator(args)
    if args.features:
        try:
            ids = [int(x) for x in args.features.split(",") if x.strip()]
        except ValueError as err:
            raise FacInputError(f"--features takes comma-separated integers: {err}") from err
        space = get_feature_space(args.feature_space)
        labels = explain_features(space, ids, gen, show_progress=not args.quiet) if gen else {}
        for f in ids:
            fact = space.fact(f)
            print(f"feature {f}: {fact.get('summary') or 'no spans stored'}")
            if f in labels:
                ok = "" if labels[f]["verified"] else " (not confirmed by the check pass)"
                print(f"  {labels[f]['source']}: {labels[f]['explanation']}{ok}")
            print("  " + (render_spans(top_spans(space, f), 5) or "(no spans)").replace("\n", "\n  "))
        return 0
    if not args.data or not args.anchor:
        raise FacInputError("fac explain needs DATA and --anchor (its missing features are explained), or --features")
    _preflight(args, args.out)
    out = _score(args, read_texts(args.data, args.column, _hub(args)),
                 read_texts(args.anchor, args.anchor_column, _hub(args, "anchor")), gen)
    shown = out.result.missing[: args.n_features]
    labels = explain_features(out.space, shown, gen, spans=out.anchor_spans, show_progress=not args.quiet) if gen else None
    write_report(out, args.out, data_name=str(args.data), anchor_name=str(args.anchor), explanations=labels,
                 n_features=args.n_features)
    print(summary_line(out))
    print(f"report: {Path(args.out) / 'report.md'} and {Path(args.out) / 'report.html'}")
    return 0


def cmd_train_sae(args) -> int:
    from fac_metric import FacInputError, Ranks
    from fac_metric.space import DEFAULT_LM
    from fac_metric.training import SAETrainConfig, TrainSpaceArgs, run

    ranks = Ranks.current()
    world = args.processes if ranks.world == 1 else ranks.world
    if args.shard_texts < 1:
        raise FacInputError(f"--shard-texts {args.shard_texts}: a shard holds at least 1 row")
    if SAETrainConfig.batch_size % world:
        raise FacInputError(f"{world} processes: each trains an equal slice of the {SAETrainConfig.batch_size}-row "
                            "batch, so use a number of processes that divides it (2, 4, 8...)")
    if args.processes > 1 and ranks.world == 1:
        return _spread(args.processes, args.argv)
    rows = _read_rows(args.data, args.column) if args.data else None
    cfg = SAETrainConfig(d_sae=args.d_sae, k=args.k, lr=args.lr, epochs=args.epochs, seed=args.seed)
    quality = run(TrainSpaceArgs(out=Path(args.out), work_dir=Path(args.work_dir), model=args.model or DEFAULT_LM,
                                 layer=args.layer, rows=rows, dtype=args.dtype, max_tokens=args.max_tokens, train=cfg,
                                 show_progress=not args.quiet, device=args.device, stream=args.stream_activations,
                                 buffer_tokens=args.buffer_tokens, shard_texts=args.shard_texts), ranks)
    if ranks.main:
        print(json.dumps(quality, indent=2))
    return 0


def _add_augment(sub) -> None:
    p = sub.add_parser("augment", help="add verified synthetic rows covering the features the data misses (FAC Synthesis)")
    p.add_argument("data", help=DATA_FORMATS)
    _add_data_options(p, anchor_required=True)
    p.add_argument("-o", "--out", required=True,
                   help="output: .jsonl/.json/.csv/.parquet file, or a folder (Dataset.save_to_disk)")
    p.add_argument("--budget", type=int, help="accepted new rows wanted (default: one pass over the missing features)")
    p.add_argument("--max-calls", type=int, help="cap on generator calls (never exceeded)")
    p.add_argument("--samples-per-feature", type=int, default=2, help="step-2 samples per missing feature")
    p.add_argument("--max-features", type=int, help="try at most the N first missing features")
    p.add_argument("--shape", choices=["text", "messages", "preference", "instruction"],
                   help="override the detected shape (see fac_datasets_ext.shapes)")
    p.add_argument("--constant", action="append", default=[], metavar="COLUMN=JSON",
                   help="value of a column new rows do not generate, e.g. --constant label=1 (repeatable)")
    p.add_argument("--templates", help="folder of prompt templates replacing the shipped ones (step1.txt, step2.txt, ...)")
    p.add_argument("--no-on-task-gate", dest="on_task", action="store_false",
                   help="keep samples that fire their feature even if they do not read like the anchor's texts")
    _add_generator_options(p, default="local", purpose="that writes the samples (and judges features for "
                                                      "--relevance judge)")
    _add_relevance_options(p)
    _add_space_options(p)
    p.add_argument("--seed", type=int, default=0, help="same seed, same rows, for 1 or N processes (default 0)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="tokens per synthesised sample")
    p.add_argument("--cache-dir", help="where run folders (journal, encodings, report.json) live "
                                       "(default: ~/.cache/fac/augment)")
    p.add_argument("--fresh", action="store_true", help="discard this run's journal and start again")
    _add_run_options(p)


def cmd_augment(args) -> int:
    from fac_metric import FacInputError

    from .augmentation import augment
    from .distributed import Ranks
    from .io import load_rows

    constants = {}
    for item in args.constant:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FacInputError(f"--constant {item!r} is not COLUMN=VALUE")
        try:
            constants[name] = json.loads(value)
        except ValueError:
            constants[name] = value  # a bare word is a string
    _check_output(Path(args.out))
    ranks = Ranks.current()
    local = not args.generator.startswith(("http://", "https://"))
    on_device = {"device": ranks.device} if local and ranks.device else {}  # each process on its own GPU
    gen = _generator(args, **on_device)
    spec = _relevance(args, gen)
    data, anchor = load_rows(args.data, _hub(args)), load_rows(args.anchor, _hub(args, "anchor"))
    out = augment(data, anchor, args.budget, args.max_calls, args.samples_per_feature, args.column, gen, spec,
                  args.threshold, args.seed, args.cache_dir, feature_space=args.feature_space, shape=args.shape,
                  anchor_column=args.anchor_column, constants=constants, templates=args.templates,
                  max_features=args.max_features, max_new_tokens=args.max_new_tokens, on_task=args.on_task,
                  batch_size=args.batch_size,
                  show_progress=not args.quiet, load_from_cache_file=not args.fresh)
    if not ranks.main:
        return 0
    _write_rows(out.dataset, Path(args.out))
    r, syn = out.report, out.report["synthesis"]
    print(f"FAC {_num(r['fac_before'])} -> {_num(r['fac_after'])}: {r['new_rows']} new rows, "
          f"{len(r['newly_covered'])} features newly covered, {len(r['still_missing'])} still missing; "
          f"{syn['calls']} generator calls, acceptance {syn['acceptance_rate']:.2f} ({syn['stopped_by']})")
    if syn["on_task_gate"] is not None:
        print(f"{syn['off_task']} of {syn['passed_threshold']} samples that fired their feature were rejected as "
              f"off-task (on-task gate: best feature overlap with an anchor text >= {syn['on_task_gate']['cutoff']:.2f})")
    print(f"wrote {args.out}; report: {out.run_dir / 'report.json'}")
    return 0


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


_ROW_FILES = (".jsonl", ".json", ".csv", ".parquet")


def _check_output(path: Path) -> None:
    """Refuse, before any work, an output ``_write_rows`` could not write."""
    from fac_metric import FacInputError
    from fac_metric.meaning import check_writable_folder

    if path.suffix.lower() in _ROW_FILES:
        if path.is_dir():
            raise FacInputError(f"-o {path} is a folder: name a {'/'.join(_ROW_FILES)} file, or a folder without a suffix")
        check_writable_folder(path.parent, "the folder of -o")
    else:
        check_writable_folder(path, "-o")


def _write_rows(ds, path: Path) -> None:
    """``ds`` to ``path`` by its suffix (jsonl/json: JSON lines; csv; parquet), else a saved-dataset folder.

    Written beside ``path`` first, then renamed over it: a kill never leaves half a file."""
    import shutil

    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if suffix in (".jsonl", ".json"):
            ds.to_json(str(tmp), lines=True, force_ascii=False)
        elif suffix == ".csv":
            ds.to_csv(str(tmp), index=False)
        elif suffix == ".parquet":
            ds.to_parquet(str(tmp))
        else:
            ds.save_to_disk(str(tmp))
            if path.is_dir():
                shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _read_rows(paths: list[str], column: str | None) -> list[dict]:
    """Corpus rows from files: ``{"messages"}`` for chats, ``{"text"}`` for strings."""
    from .io import read_cells

    rows = []
    for path in paths:
        rows += [{"messages": t} if isinstance(t, list) else {"text": t} for t in read_cells(path, column)]
    return rows


def build_parser() -> argparse.ArgumentParser:
    from fac_metric import __version__

    parser = argparse.ArgumentParser(prog="fac", description="Feature Activation Coverage for training data")
    parser.add_argument("--version", action="version", version=f"fac {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback too")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_score(sub)
    _add_train(sub)
    _add_spans(sub)
    _add_explain(sub)
    _add_augment(sub)
    return parser


@contextmanager
def _plain_warnings(command: str) -> Iterator[None]:
    """Print our ``FacWarning``s as ``fac <command>: warning: ...`` (not with a source line)."""
    from fac_metric import FacWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FacWarning):
            print(f"fac {command}: warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


@contextmanager
def _quiet(on: bool) -> Iterator[None]:
    """With ``--quiet``, no library's progress bars either (transformers' weight loading, datasets')."""
    if not on:
        yield
        return
    import datasets
    from transformers.utils import logging as tf_logging

    bars = (datasets.is_progress_bar_enabled(), tf_logging.is_progress_bar_enabled())
    datasets.disable_progress_bars()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars[0]:
            datasets.enable_progress_bars()
        if bars[1]:
            tf_logging.enable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    from fac_metric import FacError

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --processes runs again in each process
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _plain_warnings(args.command), _quiet(getattr(args, "quiet", False)):
            return {"score": cmd_score, "train-sae": cmd_train_sae, "spans": cmd_spans, "explain": cmd_explain,
                    "augment": cmd_augment}[args.command](args)
    except FacError as err:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"fac {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
