"""Publish a feature space as a Hub model repo (default: the embedded one, with its LM's weights).

    python -m hub_scripts.push_feature_space NAMESPACE/NAME --with-lm --dry-run
    python -m hub_scripts.push_feature_space NAMESPACE/NAME --feature-space DIR --out built/

The folder is built first (``--out``, default a temporary folder) and listed; without
``--dry-run`` it is then uploaded with the token huggingface_hub finds (``$HF_TOKEN`` or
``hf auth login``), which is never printed. ``FeatureSpace.load("NAMESPACE/NAME")`` loads it back.
"""

from __future__ import annotations

import argparse
import sys

from hub_scripts._cli import run_push


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_scripts.push_feature_space", description=__doc__.split("\n")[0])
    parser.add_argument("repo_id", help="Hub model repo to create or update: namespace/name")
    parser.add_argument("--feature-space", help="feature-space folder (default: the embedded one)")
    parser.add_argument("--with-lm", action="store_true", help="include the LM's weights in lm/ (needed for the "
                        "default space: its LM is the dequantised GGUF, not the Hub original)")
    parser.add_argument("--license", help="licence id for the card (default: apache-2.0 for the embedded space, else other)")

    def build(args, out):
        from fac_metric.space.publishing import build_feature_space_repo

        return build_feature_space_repo(args.feature_space, out, with_lm=args.with_lm, license=args.license,
                                        overwrite=args.overwrite)

    return run_push(parser, argv, "model", build)


if __name__ == "__main__":
    sys.exit(main())
