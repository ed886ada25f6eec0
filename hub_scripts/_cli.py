"""What every ``hub_scripts`` push shares: the common flags, build-then-list, ``--dry-run``, one-line errors."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable

from fac_metric.errors import FacError


def run_push(parser: argparse.ArgumentParser, argv: list[str] | None, repo_type: str,
             build: Callable[[argparse.Namespace, Path], Path], *, space_sdk: str | None = None) -> int:
    """Parse ``argv``, build the folder with ``build(args, out)``, print the plan, and upload unless
    ``--dry-run``. Exit 0 on success, 2 with one line on a ``FacError`` (bad id, offline, refused)."""
    parser.add_argument("--out", help="folder to build into (default: a new temporary folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    parser.add_argument("--dry-run", action="store_true", help="build and list the folder; upload nothing")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to upload to (created if missing; default: main)")
    args = parser.parse_args(argv)
    from fac_metric.publish import check_can_upload, check_repo_id, describe_plan, upload

    try:
        check_repo_id(args.repo_id) if args.dry_run else check_can_upload(args.repo_id)  # before any work
        # A temporary folder is named like the repo: evaluate finds a module's script by that name.
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f"fac-{repo_type}-")) / args.repo_id.split("/")[1]
        folder = build(args, out)
        print(describe_plan(folder, args.repo_id, repo_type))
        if args.dry_run:
            print("dry run: nothing uploaded")
            return 0
        url = upload(folder, args.repo_id, repo_type, private=args.private, revision=args.revision, space_sdk=space_sdk)
    except FacError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"uploaded: {url}")
    return 0
