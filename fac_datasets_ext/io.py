"""Read the texts of data through ``datasets``: a jsonl/json, csv, parquet or txt file, a saved
dataset, a dataset repo folder, or a Hub dataset id (``--split``, ``--config``, ``--revision``).

Owns: format detection, reading what each row encodes (chosen by the data's shape, the same
registry ``augment_with_fac`` uses: :mod:`fac_datasets_ext.shapes`), Hub ids (a dataset repo, or
a saved ``FeatureProfile`` pushed as one), and clear errors for unreadable input (missing file,
non-UTF-8 bytes, empty file, no usable column, a Hub id offline). Must not: run models.

>>> HubOptions(split="test").describe()
'split test'
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fac_metric import FacInputError

from .shapes import shape_of

_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


@dataclass(frozen=True)
class HubOptions:
    """Which part of a Hub dataset (or dataset repo folder) to read: split, config, revision."""

    split: str | None = None
    config: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in (("config", self.config), ("split", self.split),
                                                 ("revision", self.revision)) if v) or "defaults"


def is_hub_id(path: str | Path) -> bool:
    """Whether ``path`` reads as a Hub repo id (``namespace/name``) rather than a local path."""
    text = str(path)
    return not Path(text).exists() and text.count("/") == 1 and not text.startswith((".", "/", "~")) \
        and not Path(text).suffix.lower() in _BUILDERS and all(text.split("/"))


def load_rows(path: str | Path, hub: HubOptions | None = None):
    """A ``datasets.Dataset`` of the file, saved-dataset folder, dataset repo folder or Hub
    dataset id at ``path`` (``hub`` picks split, config and revision of the last two)."""
    import datasets

    hub = hub or HubOptions()
    if is_hub_id(path):
        return _load_repo(str(path), hub)
    path = Path(path)
    if not path.exists():
        raise FacInputError(f"{path} does not exist (a Hub dataset is named 'namespace/name')")
    if path.is_dir():
        if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
            return _load_repo(str(path), hub)  # a dataset repo's files (e.g. a downloaded or built one)
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as err:
            raise FacInputError(f"{path} is a folder but not a dataset saved with save_to_disk: {err}") from err
        if isinstance(ds, datasets.DatasetDict):
            split = hub.split or ("train" if "train" in ds else next(iter(ds)))
            if split not in ds:
                raise FacInputError(f"{path} has no split {split!r}; splits: {sorted(ds)}")
            ds = ds[split]
        return ds
    builder = _BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise FacInputError(f"{path}: unknown file type {path.suffix!r}; use one of {sorted(_BUILDERS)} or a saved dataset folder")
    if path.stat().st_size == 0:
        raise FacInputError(f"{path} is empty: it holds no texts")
    if builder in ("json", "csv", "text"):
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise FacInputError(f"{path} is not valid UTF-8 (byte {err.start}): re-encode it, e.g. `iconv -f latin1 -t utf-8`") from err
    if path.suffix.lower() == ".jsonl":
        _check_jsonl(path)
    try:
        with _no_progress_bars():  # a local file loads in a blink; its bars would only bury messages
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as err:
        raise FacInputError(f"cannot read {path} as {builder}: {str(err).splitlines()[0]}") from err
    return ds


def _load_repo(repo: str, hub: HubOptions):
    """``datasets.load_dataset`` of a Hub id or repo folder, one split of it, with one-line errors."""
    import datasets

    from fac_metric.space import offline

    # datasets caches a repo folder under its *name* and its file patterns, not its path: two folders
    # called "repo" with the same layout read back as whichever came first (even with
    # force_redownload, the first one's schema is kept). A local folder is therefore prepared in
    # a cache of its own, removed when the process ends.
    local = {"cache_dir": _private_cache()} if Path(repo).is_dir() else {}
    try:
        with _no_progress_bars():
            ds = datasets.load_dataset(repo, name=hub.config, split=hub.split, revision=hub.revision, **local)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (" HF_HUB_OFFLINE=1 is set: only datasets already in the cache load; unset it to download."
                if offline() and not Path(repo).exists() else "")
        raise FacInputError(f"cannot load dataset {repo!r} ({hub.describe()}): {first}.{hint}") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1 and "train" not in ds:
            raise FacInputError(f"dataset {repo!r} has splits {sorted(ds)}: choose one with --split")
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    return ds


def _private_cache() -> str:
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="fac-datasets-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def hub_profile(repo: str, revision: str | None = None) -> Path | None:
    """The local folder of a ``FeatureProfile`` pushed as Hub dataset repo ``repo``, or None when
    that repo holds no ``profile.json`` (it is a dataset). Offline, only a cached profile is found."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    from fac_metric.measure import PROFILE_META
    from fac_metric.space import offline

    try:
        folder = Path(snapshot_download(repo, repo_type="dataset", revision=revision, local_files_only=offline(),
                                        allow_patterns=[PROFILE_META, "profile.safetensors", "README.md"]))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
        return None
    except Exception:  # no network, gated: let datasets say it in its own words
        return None
    return folder if (folder / PROFILE_META).is_file() else None


def _check_jsonl(path: Path) -> None:
    """Name the first line of a JSON Lines file that is not a JSON object (datasets only says that
    'an error occurred while generating the dataset')."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise FacInputError(f"{path} line {number} is not valid JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(value, dict):
                raise FacInputError(f"{path} line {number} is a JSON {type(value).__name__}, not an object of columns")


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def read_texts(path: str | Path, column: str | None = None, hub: HubOptions | None = None) -> list:
    """What each row of a data file encodes (strings or chats), as its shape says; refuses an empty file.

    The same rows give the same texts here as in ``fac augment``: for a ``text`` shape the
    text column, for ``messages`` the first user turn, for ``instruction`` rows the instruction
    (+ input), for ``preference`` rows the prompt; ``column`` overrides the column.
    """
    ds = load_rows(path, hub)
    if len(ds) == 0:
        raise FacInputError(f"{path} holds no rows")
    shape = shape_of(ds, column=column)
    return [shape.encoded(row) for row in ds]


def read_labelled(path: str | Path, label_column: str, label: str, column: str | None = None,
                  hub: HubOptions | None = None) -> tuple[list, list]:
    """The texts of the rows whose ``label_column`` is ``label`` (compared as text: a CLI value),
    and those of every other row: a labelled dataset as anchor and contrast set in one file.

    Refuses an unknown label column, and a label that selects no row or every row (each side
    must hold texts for the contrast test to mean anything)."""
    ds = load_rows(path, hub)
    if label_column not in ds.column_names:
        raise FacInputError(f"{path} has no column {label_column!r} (--label-column); columns: {ds.column_names}")
    shape = shape_of(ds, column=column)
    labels = [str(v) for v in ds[label_column]]
    pos = [shape.encoded(row) for row, v in zip(ds, labels) if v == label]
    neg = [shape.encoded(row) for row, v in zip(ds, labels) if v != label]
    if not pos or not neg:
        seen = sorted(set(labels))[:10]
        raise FacInputError(f"{path}: --anchor-label {label!r} selects {len(pos)} of {len(labels)} rows; the anchor and "
                            f"its contrast (the other rows) both need texts. Labels seen: {seen}")
    return pos, neg


def read_cells(path: str | Path, column: str | None = None, hub: HubOptions | None = None) -> list:
    """The whole cells of the column the shape reads (a chat whole, not its first turn): corpora."""
    ds = load_rows(path, hub)
    return list(ds[shape_of(ds, column=column).column])
