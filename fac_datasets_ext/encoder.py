"""``FeatureEncoder``: the map-style encoder that adds each text's active SAE features to a dataset.

Owns: turning a ``datasets`` batch (or row) of texts or chats into per-row active feature ids
and activations, the encoder's deterministic ``datasets`` fingerprint (so a re-run ``map`` is
a cache hit), and how it travels to ``num_proc`` worker processes (by its feature space's
source, never the torch model). Must not: compute FAC (``fac_metric.measure``), print, or show
a progress bar (``ds.map(..., desc=...)`` shows ``datasets``' own).

``batched=True`` is the fast way: the texts of a batch go through the model together.

>>> from datasets import Dataset
>>> ds = Dataset.from_dict({"text": ["Write a haiku about rain.", "List three prime numbers."]})
>>> out = ds.map(FeatureEncoder(column="text"), batched=True, desc="Encoding features")
>>> out.column_names
['text', 'fac_feature_ids', 'fac_feature_values']
>>> ids, values = out[0]["fac_feature_ids"], out[0]["fac_feature_values"]
>>> len(ids) > 0 and ids == sorted(ids) and all(isinstance(i, int) for i in ids) and len(values) == len(ids)
True
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Mapping

import numpy as np

from fac_metric import FacInputError, FacMismatchError, FacModelError, FeatureSpace, get_feature_space
from fac_metric.space import TextItem, check_item

_IDENTITY_VERSION = 1
"""Bump when what the encoder writes changes, so caches made by an older encoder are not reused."""

_HOME_PID = os.getpid()
"""The process that imported this module; a forked child (a ``num_proc`` worker) has another pid."""

_threads_capped = False

_LIVE: "weakref.WeakValueDictionary[tuple[str, str, str], FeatureSpace]" = weakref.WeakValueDictionary()
"""Spaces of live encoders by (fingerprint, dtype, device): a forked worker (or a copy) finds the
parent's space here without loading it again or pickling it."""


def declared_features(ds) -> Any:
    """``ds.features``; for an untyped ``IterableDataset``, the types of its first row (read for
    that). An empty stream has no types to read: a clear error rather than ``StopIteration``."""
    if ds.features is None and hasattr(ds, "_resolve_features"):
        try:
            return ds._resolve_features().features
        except StopIteration:
            raise FacInputError("the stream has no rows: there is nothing to encode or augment") from None
    return ds.features


class FeatureEncoder:
    """Map-style encoder: ``ds.map(FeatureEncoder(space, column="text"), batched=True)``.

    Adds ``{prefix}feature_ids`` (the latents whose pooled activation exceeds the per-latent
    threshold ``space.threshold_at(threshold).per_latent``, ascending) and ``{prefix}feature_values``
    (their activations) to each row. ``feature_space`` is ``None`` (the embedded default), a
    folder or Hub id, or a ``FeatureSpace``; cells of ``column`` are strings or chats (lists of
    ``{"role", "content"}`` messages).

    Per row, ids and values are numpy arrays (``int32`` / ``float32``): the Arrow columns are
    then typed ``list<int32>`` / ``list<float32>`` even when a batch's texts have no active
    feature at all (Python lists would make Arrow type an all-empty first batch ``list<null>``
    and the next batch fails to write). Read back from a ``Dataset`` they are Python lists.

    Fingerprint: ``datasets`` hashes the encoder by its identity only: the space's
    ``fingerprint``, δ, ``column`` and ``prefix`` (``batch_size`` changes no result and is
    left out; so are the space's dtype and device, which its fingerprint also ignores). The
    same ``map`` in another process or with another encoder of the same identity is a cache hit.

    Workers (``num_proc``): the encoder is pickled without its model and finds its space in
    the worker: a forked worker reuses the parent's copy, another reloads it from its
    ``space.source`` (the default space, or the folder or Hub id it was loaded from). In a
    forked worker torch is capped to one thread (a fork after multithreaded torch deadlocks
    otherwise). On a GPU prefer ``num_proc=None`` and a larger ``batch_size``.
    """

    def __init__(
        self,
        feature_space: Any = None,
        *,
        column: str = "text",
        threshold: float | None = None,
        batch_size: int = 32,
        prefix: str = "fac_",
    ) -> None:
        if not isinstance(column, str) or not column:
            raise FacInputError(f"column={column!r} must be the name of the dataset's text column")
        if not isinstance(prefix, str):
            raise FacInputError(f"prefix={prefix!r} must be a string (it starts the new columns' names)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise FacInputError(f"batch_size={batch_size!r} must be a positive integer")
        space = get_feature_space(feature_space)
        self.column = column
        self.prefix = prefix
        self.batch_size = batch_size
        self.threshold = space.threshold_at(threshold).delta  # validated once; the space is found again by it
        self._fingerprint = space.fingerprint
        self._dtype, self._device = _dtype_device(space)
        self._source = space.source
        self._space: FeatureSpace | None = space
        _LIVE[(self._fingerprint, self._dtype, self._device)] = space

    # ----------------------------------------------------------------- public
    @property
    def feature_space(self) -> FeatureSpace:
        """The space this encoder encodes with (found or reloaded on first use in a worker)."""
        if self._space is None:
            self._space = self._find_space()
        return self._space

    @property
    def ids_column(self) -> str:
        return f"{self.prefix}feature_ids"

    @property
    def values_column(self) -> str:
        return f"{self.prefix}feature_values"

    def output_features(self):
        """The two columns this encoder adds, typed: ``list<int32>`` ids, ``list<float32>`` values."""
        from datasets import Features, List, Value

        return Features({self.ids_column: List(Value("int32")), self.values_column: List(Value("float32"))})

    def features_for(self, ds) -> Any:
        """The features of ``ds`` once mapped with this encoder: its own plus :meth:`output_features`.

        What ``IterableDataset.map`` needs as ``features=`` to know its output's types
        (``datasets`` cannot infer them from a function); a ``Dataset`` gets the same types.
        """
        features = declared_features(ds)
        if features is None:
            raise FacInputError("the dataset does not declare its features: cast it first (ds.cast(features)) "
                                "or pass features= to map yourself")
        clash = sorted(set(features) & set(self.output_features()))
        if clash:
            raise FacInputError(f"the dataset already has column(s) {clash}: drop them or pass another prefix=")
        return type(features)({**features, **self.output_features()})

    def map(self, ds, **map_kwargs: Any):
        """``ds.map(self, batched=True, ...)`` with the output features declared, for a
        ``Dataset`` or an ``IterableDataset`` (which then knows its column types, as a
        ``Dataset`` does). ``map_kwargs`` go to ``ds.map`` (``num_proc``, ``desc``, ...).

        >>> from datasets import Dataset
        >>> stream = Dataset.from_dict({"text": ["Write a haiku about rain."]}).to_iterable_dataset()
        >>> encoder = FeatureEncoder(column="text")
        >>> stream.map(encoder, batched=True).features is None, encoder.map(stream).features[encoder.ids_column]
        (True, List(Value('int32')))
        """
        map_kwargs.setdefault("batch_size", self.batch_size)
        return ds.map(self, batched=True, features=self.features_for(ds), **map_kwargs)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Active feature ids and values of a batch (``batched=True``) or of one row.

        Batched: ``{ids_column: [int32 array per row], values_column: [float32 array per row]}``;
        one row (its cell a string or a chat): the two arrays of that row.
        """
        if self.column not in batch:
            raise FacInputError(f"column {self.column!r} is not in the dataset: its columns are {list(batch.keys())}; "
                                "pass column=<the text column>")
        cells = batch[self.column]
        if isinstance(cells, np.ndarray):
            cells = cells.tolist()
        if _is_single(cells):
            ids, values = self._encode([cells])
            return {self.ids_column: ids[0], self.values_column: values[0]}
        ids, values = self._encode(list(cells))
        return {self.ids_column: ids, self.values_column: values}

    # ----------------------------------------------------------------- identity
    def _identity(self) -> tuple:
        return ("fac_datasets_ext.encoder.FeatureEncoder", _IDENTITY_VERSION, self._fingerprint, self.threshold,
                self.column, self.prefix)

    def __reduce__(self):
        # What goes to worker processes (and copies): the identity and where to find the space,
        # never the torch model.
        state = {"fingerprint": self._fingerprint, "threshold": self.threshold, "column": self.column,
                 "prefix": self.prefix, "batch_size": self.batch_size, "dtype": self._dtype,
                 "device": self._device, "source": self._source}
        return (_restore, (state,))

    def __repr__(self) -> str:
        return (f"FeatureEncoder(fingerprint={self._fingerprint!r}, column={self.column!r}, "
                f"threshold={self.threshold}, prefix={self.prefix!r})")

    # ----------------------------------------------------------------- internals
    def _encode(self, cells: list) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if not cells:
            return [], []
        items: list[TextItem] = []
        for i, cell in enumerate(cells):
            try:
                items.append(check_item(cell, i))
            except FacInputError as err:
                raise FacInputError(f"column {self.column!r}: {err}") from None
        _cap_threads_in_forked_worker()
        space = self.feature_space
        per_latent = space.threshold_at(self.threshold).per_latent
        acts = space.encode(items, batch_size=self.batch_size, show_progress=False)
        ids_out, values_out = [], []
        for i in range(acts.n_texts):
            ids, values = acts.row(i)
            keep = values > per_latent[ids]
            ids_out.append(np.ascontiguousarray(ids[keep], dtype=np.int32))
            values_out.append(np.ascontiguousarray(values[keep], dtype=np.float32))
        return ids_out, values_out

    def _find_space(self) -> FeatureSpace:
        space = _LIVE.get((self._fingerprint, self._dtype, self._device))
        if space is None:
            if self._source is None:
                raise FacModelError(
                    "this FeatureEncoder was sent to another process, but its feature space was not loaded from a "
                    "folder it can be reloaded from: build the encoder from the folder (or None for the default "
                    "space) instead of an instance, or map with num_proc=None")
            space = get_feature_space(self._source)
            _LIVE[(self._fingerprint, self._dtype, self._device)] = space
        if space.fingerprint != self._fingerprint:
            raise FacMismatchError(f"the feature space reloaded from {self._source.spec!r} has fingerprint "  # type: ignore[union-attr]
                                   f"{space.fingerprint}, not {self._fingerprint}: it changed on disk since the "
                                   "encoder was built")
        return space


def _restore(state: dict) -> FeatureEncoder:
    enc = FeatureEncoder.__new__(FeatureEncoder)
    enc.column, enc.prefix, enc.batch_size = state["column"], state["prefix"], state["batch_size"]
    enc.threshold = state["threshold"]
    enc._fingerprint, enc._dtype, enc._device = state["fingerprint"], state["dtype"], state["device"]
    enc._source = state["source"]
    enc._space = None
    return enc


def _is_single(cells: Any) -> bool:
    """Whether a ``map`` call got one row (its cell: a string, a chat, or a bad value) or a batch."""
    if isinstance(cells, (list, tuple)):
        return bool(cells) and all(isinstance(m, dict) for m in cells)
    return True


def _cap_threads_in_forked_worker() -> None:
    """In a forked child, run torch on one thread: its thread pool did not survive the fork."""
    global _threads_capped
    if not _threads_capped and os.getpid() != _HOME_PID:
        import torch

        torch.set_num_threads(1)
        _threads_capped = True


def _dtype_device(space: FeatureSpace) -> tuple[str, str]:
    dtype = str(space.reader.model.dtype).removeprefix("torch.")
    return dtype, str(space.sae.W_enc.device)


def _register_hasher() -> None:
    """Make ``datasets``' fingerprint hash the encoder by its identity (see ``FeatureEncoder``).

    ``datasets`` pickles a mapped function with its own dill ``Pickler`` to hash it; a reducer
    registered there is used for hashing only (workers get ``__reduce__``). Should that
    private hook move, ``__reduce__`` is hashed instead: still deterministic, but then the
    space's source, dtype and device count too.
    """
    try:
        from datasets.utils._dill import pklregister
    except ImportError:  # pragma: no cover - depends on the datasets version
        return

    @pklregister(FeatureEncoder)
    def _save_encoder(pickler, obj: FeatureEncoder) -> None:
        pickler.save_reduce(tuple, (obj._identity(),), obj=obj)


_register_hasher()

__all__ = ["FeatureEncoder"]
