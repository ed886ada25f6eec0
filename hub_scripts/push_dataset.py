"""Publish an augmented dataset (with its card and run report), or a saved profile, as a Hub dataset repo.

    python -m hub_scripts.push_dataset NAMESPACE/NAME augmented.jsonl --report runs/<key>/report.json --dry-run
    python -m hub_scripts.push_dataset NAMESPACE/NAME --profile fac_report/anchor_profile

``fac augment`` prints where its ``report.json`` is. The folder is built first (``--out``) and
listed; without ``--dry-run`` it is uploaded with the token huggingface_hub finds (never printed).
A pushed profile is an anchor by repo id: ``fac score data.jsonl --anchor NAMESPACE/NAME``.
"""

from __future__ import annotations

import argparse
import sys

from hub_scripts._cli import run_push


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_scripts.push_dataset", description=__doc__.split("\n")[0])
    parser.add_argument("repo_id", help="Hub dataset repo to create or update: namespace/name")
    parser.add_argument("data", nargs="?", help="rows to publish: a jsonl/json/csv/parquet file or a saved dataset")
    parser.add_argument("--report", help="the augmentation run's report.json, recorded in the card")
    parser.add_argument("--profile", help="publish this saved FeatureProfile folder instead of rows")
    parser.add_argument("--license", default="other", help="licence id for the card (default: other)")

    def build(args, out):
        from fac_metric.errors import FacInputError
        from fac_metric.saved import read_json

        from fac_datasets_ext.io import load_rows
        from fac_datasets_ext.publishing import build_dataset_repo, build_profile_repo

        if (args.profile is None) == (args.data is None):
            raise FacInputError("pass DATA (rows to publish) or --profile DIR, one of them")
        if args.profile is not None:
            return build_profile_repo(args.profile, out, overwrite=args.overwrite)
        report = read_json(args.report, "an augmentation report.json") if args.report else None
        return build_dataset_repo(load_rows(args.data), out, report=report, license=args.license,
                                  overwrite=args.overwrite)

    return run_push(parser, argv, "dataset", build)


if __name__ == "__main__":
    sys.exit(main())
