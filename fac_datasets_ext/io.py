"""Read the texts of a data file through ``datasets``: jsonl/json, csv, parquet, txt, or a saved dataset.

Owns: format detection, reading what each row encodes (chosen by the data's shape, the same
registry ``augment_with_fac`` uses: :mod:`fac_datasets_ext.shapes`), and clear errors for
unreadable input (missing file, non-UTF-8 bytes, empty file, no usable column). Must not: run
models.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fac_metric import FacInputError

from .shapes import shape_of

_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


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
    if path.suffix.lower() == ".jsonl":
        _check_jsonl(path)
    try:
        with _no_progress_bars():  # a local file loads in a blink; its bars would only bury messages
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as err:
        raise FacInputError(f"cannot read {path} as {builder}: {str(err).splitlines()[0]}") from err
    return ds


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


def read_texts(path: str | Path, column: str | None = None) -> list:
    """What each row of a data file encodes (strings or chats), as its shape says; refuses an empty file.

    The same rows give the same texts here as in ``fac augment``: for a ``text`` shape the
    text column, for ``messages`` the first user turn, for ``instruction`` rows the instruction
    (+ input), for ``preference`` rows the prompt; ``column`` overrides the column.
    """
    ds = load_rows(path)
    if len(ds) == 0:
        raise FacInputError(f"{path} holds no rows")
    shape = shape_of(ds, column=column)
    return [shape.encoded(row) for row in ds]


def read_labelled(path: str | Path, label_column: str, label: str, column: str | None = None) -> tuple[list, list]:
    """The texts of the rows whose ``label_column`` is ``label`` (compared as text: a CLI value),
    and those of every other row: a labelled dataset as anchor and contrast set in one file.

    Refuses an unknown label column, and a label that selects no row or every row (each side
    must hold texts for the contrast test to mean anything)."""
    ds = load_rows(path)
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


def read_cells(path: str | Path, column: str | None = None) -> list:
    """The whole cells of the column the shape reads (a chat whole, not its first turn): corpora."""
    ds = load_rows(path)
    return list(ds[shape_of(ds, column=column).column])
