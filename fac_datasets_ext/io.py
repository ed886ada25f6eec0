"""Read the texts of a data file through ``datasets``: jsonl/json, csv, parquet, txt, or a saved dataset.

Owns: format detection, column choice (``text``, then ``messages``, ``prompt``, ``instruction``,
``question``, or the only string column), and clear errors for unreadable input (missing file,
non-UTF-8 bytes, empty file, no usable column). Must not: run models.
"""

from __future__ import annotations

from pathlib import Path

from fac_metric.errors import FacInputError

_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
TEXT_COLUMNS = ("text", "messages", "prompt", "instruction", "question", "content")


def load_rows(path: str | Path):
    """A ``datasets.Dataset`` of the file or saved-dataset folder at ``path``."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise FacInputError(f"{path} does not exist")
    if path.is_dir():
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as err:
            raise FacInputError(f"{path} is a folder but not a dataset saved with save_to_disk: {err}") from err
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
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
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as err:
        raise FacInputError(f"cannot read {path} as {builder}: {str(err).splitlines()[0]}") from err
    return ds


def pick_column(ds, column: str | None = None) -> str:
    """The column holding the texts: ``column`` if given, else the first of ``TEXT_COLUMNS`` present."""
    names = list(ds.column_names)
    if column is not None:
        if column not in names:
            raise FacInputError(f"column {column!r} is not in the data; it has {names}")
        return column
    for name in TEXT_COLUMNS:
        if name in names:
            return name
    strings = [n for n, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if len(strings) == 1:
        return strings[0]
    raise FacInputError(f"cannot tell which column holds the texts among {names}: pass --column NAME")


def read_texts(path: str | Path, column: str | None = None) -> list:
    """The texts (strings or chats) of a data file; refuses an empty one."""
    ds = load_rows(path)
    if len(ds) == 0:
        raise FacInputError(f"{path} holds no rows")
    return list(ds[pick_column(ds, column)])
