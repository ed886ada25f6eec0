r"""The shapes of training data users have, and what synthesis reads and writes in each.

Owns: the one registry of data shapes every entry point asks (``fac score``, ``fac augment``,
``augment_with_fac``, the ``FeatureEncoder``): recognising a dataset's shape from its columns (``text``; chat ``messages``;
``prompt``/``chosen``/``rejected`` preference pairs; ``instruction``/``output`` Alpaca rows),
which part of a row is encoded (the part a new row is synthesised for), and how a new row is
completed in the dataset's own schema: generated fields (a response, a chosen/rejected pair),
constants, or values every anchor row shares. Must not: run models or prompt generators.

=============  ===================  ====================================  =====================
shape          detected by          encoded and synthesised               generated afterwards
=============  ===================  ====================================  =====================
``text``       a text column        the text                              nothing
``messages``   ``messages``         the first user turn                   the assistant's reply
``preference`` ``prompt, chosen,    the prompt                            ``chosen`` (a good reply),
               rejected``                                                 ``rejected`` (a flawed one)
``instruction`` ``instruction,      the instruction (+ ``input``)         ``output``
               output``
=============  ===================  ====================================  =====================

>>> shape = detect_shape(["instruction", "input", "output"])
>>> shape.name, shape.column, shape.responses
('instruction', 'instruction', ('output',))
>>> shape.encoded({"instruction": "Name a colour.", "input": "in French", "output": "Rouge."})
'Name a colour.\n\nin French'
>>> shape.new_row("List three fruits.", {"output": "Apple, pear, plum."}, ["instruction", "input", "output"], {})
{'instruction': 'List three fruits.', 'input': '', 'output': 'Apple, pear, plum.'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from fac_metric import FacInputError

SHAPES = ("text", "messages", "preference", "instruction")
TEXT_COLUMNS = ("text", "content", "sentence", "document", "question", "prompt", "instruction")
"""Columns a ``text`` shape reads, first present wins (then the only string column)."""


@dataclass(frozen=True)
class DataShape:
    """What synthesis encodes in a row and which fields a new row needs.

    ``column`` is encoded (its features are what coverage counts) and is what the synthesis loop
    writes; each of ``responses`` is then written by the generator for the new ``column`` value
    (for chats, ``response`` is the assistant turn appended to the new user turn).
    """

    name: str
    column: str
    responses: tuple[str, ...] = ()
    input_column: str | None = None
    """Alpaca's optional ``input``: appended to the instruction when encoding, empty in new rows."""

    def encoded(self, row: Mapping[str, Any]) -> Any:
        """The item the feature space encodes for ``row``: a string (or a chat, if the prompt is one).

        A string is encoded by the feature space's own rule (as one user turn for a chat-format
        space), so an instruction and a one-turn chat holding it encode alike.
        """
        value = row.get(self.column)
        if self.name == "messages" and isinstance(value, list):
            users = [m for m in value if isinstance(m, Mapping) and m.get("role") == "user"]
            content = users[0].get("content") if users else None
            return content if isinstance(content, str) else value  # the whole chat: its check names the bad message
        if self.name == "instruction" and self.input_column and row.get(self.input_column):
            return f"{value}\n\n{row[self.input_column]}"
        return value

    def new_row(self, sample: str, generated: Mapping[str, str], columns: Sequence[str],
                constants: Mapping[str, Any]) -> dict:
        """A new row in the dataset's schema: the sample, generated fields, then constants.

        Columns neither synthesised, generated nor given a constant are ``None``.
        """
        row: dict[str, Any] = {name: constants.get(name) for name in columns}
        if self.name == "messages":
            reply = generated.get("response", "")
            row[self.column] = [{"role": "user", "content": sample}, {"role": "assistant", "content": reply}]
        else:
            row[self.column] = sample
            row.update({name: generated[name] for name in self.responses if name in generated})
        if self.input_column and self.input_column in columns and self.input_column not in constants:
            row[self.input_column] = ""
        return row


def detect_shape(columns: Sequence[str], *, shape: str | None = None, column: str | None = None,
                 string_columns: Sequence[str] | None = None) -> DataShape:
    """The shape of data with ``columns``; ``shape`` and ``column`` override what is detected.

    ``column`` names the field to encode and synthesise (e.g. ``column="question"`` for a text
    shape); ``shape`` forces one of ``SHAPES`` when the columns are ambiguous. A text shape
    reads the first of ``TEXT_COLUMNS`` present, else the only one of ``string_columns``.

    >>> detect_shape(["question", "content"]).column, detect_shape(["messages", "text"]).name
    ('content', 'messages')
    """
    names = list(columns)
    if shape is not None and shape not in SHAPES:
        raise FacInputError(f"shape={shape!r} is not one of {SHAPES}")
    if column is not None and column not in names:
        raise FacInputError(f"column {column!r} is not in the data; it has {names}")

    def has(*wanted: str) -> bool:
        return all(w in names for w in wanted)

    if shape is None:
        if column is not None and column not in ("messages", "prompt", "instruction"):
            shape = "text"
        elif has("prompt", "chosen", "rejected"):
            shape = "preference"
        elif has("instruction", "output"):
            shape = "instruction"
        elif has("messages"):
            shape = "messages"
        else:
            shape = "text"
    if shape == "preference":
        _require(names, ("prompt", "chosen", "rejected"), shape)
        return DataShape("preference", column or "prompt", ("chosen", "rejected"))
    if shape == "instruction":
        _require(names, ("instruction", "output"), shape)
        return DataShape("instruction", column or "instruction", ("output",),
                         input_column="input" if "input" in names else None)
    if shape == "messages":
        _require(names, (column or "messages",), shape)
        return DataShape("messages", column or "messages", ("response",))
    if column is None:
        column = next((c for c in TEXT_COLUMNS if c in names), None)
        strings = [c for c in (string_columns or []) if c in names]
        if column is None and len(strings) == 1:
            column = strings[0]
        if column is None:
            raise FacInputError(f"cannot tell which column holds the texts among {names}: pass column=NAME "
                                "(--column NAME)")
    return DataShape("text", column)


def _require(names: Sequence[str], wanted: Sequence[str], shape: str) -> None:
    missing = [w for w in wanted if w not in names]
    if missing:
        raise FacInputError(f"shape {shape!r} needs columns {list(wanted)}; the data lacks {missing} (it has {list(names)})")


def shape_of(ds, *, shape: str | None = None, column: str | None = None) -> DataShape:
    """The shape of a ``datasets.Dataset`` (its string columns break ties): ``detect_shape`` on it."""
    strings = [n for n, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    return detect_shape(ds.column_names, shape=shape, column=column, string_columns=strings)


__all__ = ["DataShape", "detect_shape", "shape_of", "SHAPES", "TEXT_COLUMNS"]
