"""Augmented datasets and saved profiles as Hub dataset repos, each with a card saying how it was made.

Owns: the folder of a dataset repo (``data/<split>-<hash>-00000-of-00001.parquet``, ``report.json`` of
the augmentation run, a ``README.md`` whose front matter declares the splits so that
``datasets.load_dataset`` reads them back), its dataset card (FAC before/after, the feature
space and its fingerprint, generator, relevance, δ, budget, seed, the run's figures), and the
folder of a pushed ``FeatureProfile`` (usable as an anchor by repo id: ``fac score data
--anchor namespace/name``). Must not: run augmentation or encode (it publishes what exists).

>>> import datasets, tempfile
>>> folder = build_dataset_repo(datasets.Dataset.from_dict({"text": ["a", "b"]}), tempfile.mkdtemp() + "/repo")
>>> list(datasets.load_dataset(str(folder), split="train")["text"])
['a', 'b']
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fac_metric import FacInputError
from fac_metric.publish import check_can_upload, describe_plan, fresh_folder, upload


def build_dataset_repo(ds, out: str | os.PathLike, *, report: dict | None = None, license: str = "other",
                       overwrite: bool = False) -> Path:
    """Write ``ds`` (a ``Dataset``: split ``train``; or a ``DatasetDict``) as a Hub dataset repo into
    ``out`` with its card (and ``report.json`` when ``report``, an augmentation report, is given)."""
    import datasets

    splits = ds if isinstance(ds, datasets.DatasetDict) else {"train": ds}
    if not splits or not all(isinstance(s, datasets.Dataset) for s in splits.values()):
        raise FacInputError(f"build_dataset_repo needs a Dataset or DatasetDict, not {type(ds).__name__}")
    if report is not None and not isinstance(report, dict):
        raise FacInputError(f"report must be the dict augmentation wrote to report.json, not {type(report).__name__}")
    out = fresh_folder(out, overwrite=overwrite)
    (out / "data").mkdir()
    files = {}
    for name, split in splits.items():
        tmp = out / "data" / f".{name}.parquet"
        split.to_parquet(str(tmp))
        # The content's hash is in the file name: datasets caches a folder by its name and file
        # patterns, so two built folders with the same patterns would read back as one.
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]
        files[name] = f"data/{name}-{digest}-*.parquet"
        tmp.rename(out / "data" / f"{name}-{digest}-00000-of-00001.parquet")
    if report is not None:
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "README.md").write_text(dataset_card({k: len(v) for k, v in splits.items()},
                                                next(iter(splits.values())).column_names, report, license, files))
    return out


def dataset_card(sizes: dict[str, int], columns: list[str], report: dict | None, license: str,
                 files: dict[str, str] | None = None) -> str:
    """The dataset card: front matter (licence, tags, one config with a data file per split), then
    how the rows were made where an augmentation ``report`` says it."""
    front = ["---", f"license: {license}", "tags:", "- fac-metric", "- feature-activation-coverage"]
    if report is not None:
        front += ["- synthetic"]
    front += ["configs:", "- config_name: default", "  data_files:"]
    for name in sizes:
        front += [f"  - split: {name}", f"    path: {(files or {}).get(name, f'data/{name}-*.parquet')}"]
    front += ["---", ""]
    size_text = ", ".join(f"{name}: {n:,} rows" for name, n in sizes.items())
    body = [f"# Dataset\n\n{size_text}; columns: {', '.join(f'`{c}`' for c in columns)}.\n"]
    if report is not None:
        body.append(_augmentation_section(report))
    return "\n".join(front) + "\n".join(body)


def _augmentation_section(r: dict) -> str:
    syn, space = r.get("synthesis", {}), r.get("feature_space", {})

    def num(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    rows = [("FAC before → after", f"{num(r.get('fac_before'))} → {num(r.get('fac_after'))} "
                                   f"({r.get('covered_before')} → {r.get('covered_after')} of {r.get('relevant')} relevant features)"),
            ("rows", f"{r.get('rows')} original + {r.get('new_rows')} synthetic (`fac_*` columns give each one's provenance)"),
            ("feature space", f"`{space.get('spec') or 'embedded default'}` ({space.get('model')}, `{space.get('hook')}`, "
                              f"{space.get('d_sae')} latents), fingerprint `{space.get('fingerprint')}`"),
            ("generator", f"`{syn.get('generator')}`"), ("relevance", f"`{r.get('relevance')}`"), ("δ", num(r.get("threshold"))),
            ("budget / max calls", f"{syn.get('budget')} / {syn.get('max_calls')}"), ("seed", num(syn.get("seed"))),
            ("generator calls", f"{syn.get('calls')}, acceptance {num(syn.get('acceptance_rate'))}, stopped by {syn.get('stopped_by')}"),
            ("features", f"{syn.get('features_missing')} missing, {syn.get('features_tried')} tried, "
                         f"{len(r.get('newly_covered', []))} newly covered, {len(r.get('still_missing', []))} still missing")]
    table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    return f"""## How it was made

Augmented with [fac-metric](https://huggingface.co/spaces/fac-metric/fac) (FAC Synthesis): for each
task feature the original rows missed, a generator was prompted with contrastive examples and
only samples that really activate the feature were kept. `report.json` is the run's full report.

{table}
"""


def push_augmented(ds, report: dict | None, repo_id: str, *, private: bool = False, token: str | None = None,
                   license: str = "other", dry_run: bool = False, out: str | os.PathLike | None = None) -> str:
    """Publish an augmented dataset with its card: the commit URL, or with ``dry_run`` what would be uploaded."""
    check_can_upload(repo_id) if not dry_run else None
    folder = build_dataset_repo(ds, out or tempfile.mkdtemp(prefix="fac-dataset-"), report=report, license=license)
    if dry_run:
        return describe_plan(folder, repo_id, "dataset")
    return upload(folder, repo_id, "dataset", token=token, private=private, commit_message="Upload FAC-augmented dataset")


def build_profile_repo(profile, out: str | os.PathLike, *, name: str = "", overwrite: bool = False) -> Path:
    """Write a saved or in-memory ``FeatureProfile`` as a Hub dataset repo with its card."""
    from fac_metric import FeatureProfile

    if not isinstance(profile, FeatureProfile):
        if not FeatureProfile.is_saved(profile):
            raise FacInputError(f"{profile!r} is not a FeatureProfile or a folder saved with FeatureProfile.save")
        profile = FeatureProfile.load(profile)
    out = fresh_folder(out, overwrite=overwrite)
    profile.save(out)
    (out / "README.md").write_text(f"""---
license: other
tags:
- fac-metric
- feature-profile
---

# Feature profile{f': {name}' if name else ''}

What {profile.n_texts:,} texts ({profile.n_tokens:,} tokens) do in a fac-metric feature space: per
latent of {profile.d_sae}, the strongest activation and how many texts activate it above δ = {profile.delta}.
It holds no text. Feature-space fingerprint `{profile.fingerprint}` (a profile is refused by any
other space). Use it as an anchor by repo id: `fac score data.jsonl --anchor <this repo id>`.
""")
    return out
