"""Publishing to the Hugging Face Hub: a folder is built first, inspected, then uploaded.

Owns: what every push shares: checking the repo id, building into a fresh folder (never over
existing files), listing exactly what would be uploaded (``--dry-run``), the upload itself with
``huggingface_hub`` (``create_repo`` + ``upload_folder``), and failing fast and clearly where the
Hub cannot be reached. Tokens are read the standard way (``token=``, ``$HF_TOKEN``, the Hub
login, all by huggingface_hub) and never printed: messages pass through ``redact``. Must not:
know what a feature space or a dataset holds (their builders do: ``fac_metric.space.publishing``,
``fac_datasets_ext.publishing``).

>>> check_repo_id("fac-metric/smollm2-135m-l15")
'fac-metric/smollm2-135m-l15'
>>> check_repo_id("no-namespace")
Traceback (most recent call last):
...
fac_metric.errors.FacInputError: 'no-namespace' is not a Hub repo id: use 'namespace/name' (your user or organisation, then the repo)
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Literal

from fac_metric.errors import FacError, FacInputError

RepoType = Literal["model", "dataset", "space"]

__all__ = ["RepoType", "FacHubError", "check_repo_id", "fresh_folder", "link_or_copy", "listing", "describe_plan",
           "check_can_upload", "upload"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


class FacHubError(FacError, RuntimeError):
    """An upload could not be made (offline, no token, refused by the Hub)."""


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it reads as ``namespace/name``; a ``FacInputError`` saying how otherwise."""
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise FacInputError(f"{repo_id!r} is not a Hub repo id: use 'namespace/name' (your user or organisation, then the repo)")
    return repo_id


def fresh_folder(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """An empty folder at ``out`` to build a repo into; refuses one that holds files unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FacInputError(f"{out} exists and is not a folder: pass another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FacInputError(f"{out} is not empty: pass an empty or new folder (or overwrite=True / --overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def link_or_copy(src: Path, dst: Path) -> None:
    """Place ``src`` at ``dst``: a hard link where the file system allows (a 540 MB LM costs no
    disk twice), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def listing(folder: str | os.PathLike) -> list[tuple[str, int]]:
    """``(relative path, bytes)`` of every file under ``folder``, sorted: what an upload sends."""
    folder = Path(folder)
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def describe_plan(folder: str | os.PathLike, repo_id: str, repo_type: RepoType) -> str:
    """The text ``--dry-run`` prints: the repo, then each file and its size, then the total."""
    files = listing(folder)
    total = sum(size for _, size in files)
    lines = [f"would upload {len(files)} files ({_size(total)}) from {folder} to the {repo_type} repo {repo_id}:"]
    lines += [f"  {path}  {_size(size)}" for path, size in files]
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_can_upload(repo_id: str) -> None:
    """Fail before any work where an upload to ``repo_id`` cannot happen: a bad id, or ``HF_HUB_OFFLINE=1``."""
    from fac_metric.space.models import offline

    check_repo_id(repo_id)
    if offline():
        raise FacHubError(f"cannot upload to {repo_id}: HF_HUB_OFFLINE=1 forbids the Hub. Unset it (and log in with "
                          "`hf auth login` or set HF_TOKEN), or use --dry-run to build the folder only")


def upload(folder: str | os.PathLike, repo_id: str, repo_type: RepoType, *, token: str | None = None,
           private: bool = False, revision: str | None = None, commit_message: str | None = None,
           space_sdk: str | None = None) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` to it; return the commit URL.

    Offline (``HF_HUB_OFFLINE=1``) it fails at once instead of retrying; any refusal of the Hub
    is a ``FacHubError`` whose text never holds the token.
    """
    from fac_metric.llm.http import redact

    check_can_upload(repo_id)
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        if revision:
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, revision=revision,
                                 commit_message=commit_message or f"Upload with fac-metric")
    except Exception as err:  # network, 401, 403, 404: one line, secrets redacted
        secrets = [token] if isinstance(token, str) else []
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FacHubError(f"upload to {repo_type} repo {repo_id} failed: {redact(first, secrets)}") from None
    return str(getattr(info, "commit_url", info))
