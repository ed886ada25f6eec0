"""``Dataset.augment_with_fac``: add the few verified samples a dataset is missing, before training.

Owns: one augmentation run from a dataset and an anchor to a new dataset and ``report.json``:
reading rows by shape, encoding data and anchor (spread over ``accelerate`` processes, cached
in the run folder), choosing relevant features, describing each missing feature (LLM-free
summary + the anchor's own top spans), running :class:`~fac_datasets_ext.synthesis.Synthesizer`,
completing new rows in the dataset's schema with provenance columns, and FAC before/after.
Also registers ``Dataset.augment_with_fac`` and ``DatasetDict.augment_with_fac``.

A run lives in ``cache_dir/<key>``, the key hashing everything that decides the samples (data,
anchor, feature space, δ, relevance, generator, seed, settings, templates) but not ``budget`` or
``max_calls``: the same call again resumes or reuses it, and a larger budget continues it.
"""

from __future__ import annotations

import hashlib
import re
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fac_metric import FacInputError, RelevanceSpec, Scorer, get_feature_space
from fac_metric.meaning import TopSpans, feature_spans
from fac_metric.measure import DEFAULT_RELEVANCE, all_features
from fac_metric.space import cache_dir as fac_cache_dir

from .distributed import Ranks, check_not_spawning, encode_blocks_in_workers, encode_one_by_one, profile_spread
from .encoder import declared_features
from .journal import Journal
from .ontask import TaskGate
from .prompts import PromptSet
from .runlock import RunLock
from .shapes import DataShape, shape_of
from .synthesis import DedupIndex, Settings, Synthesizer, Target

logger = logging.getLogger("fac_datasets_ext")

PROVENANCE_COLUMNS = ("fac_synthetic", "fac_target_feature", "fac_activation", "fac_generator")
"""Columns added to every row; ``ds.remove_columns(list(PROVENANCE_COLUMNS))`` drops them."""
ANCHOR_SPANS = 3
"""Anchor texts shown to the generator as examples of a missing feature (and whose spans it may see)."""
EXAMPLE_CHARS = 1500
"""An example longer than this is cut at a word (a few-shot prompt of three stays well inside the context)."""
_MAP_KWARGS = ("batch_size", "desc", "load_from_cache_file", "keep_in_memory", "num_proc")


@dataclass
class AugmentResult:
    dataset: Any
    """The original rows, then the accepted new rows, all with provenance columns."""
    report: dict
    run_dir: Path


def augment(ds, anchor, budget: int | None = None, max_calls: int | None = None, samples_per_feature: int = 2,
            column: str | None = None, generator: Any = "local",
            relevance: str | Sequence[int] | RelevanceSpec = DEFAULT_RELEVANCE, threshold: float | None = None,
            seed: int = 0, cache_dir: str | os.PathLike | None = None, *, feature_space: Any = None,
            shape: str | None = None, anchor_column: str | None = None, contrast: Any = None, alpha: float | None = None,
            guideline: str | None = None, judge: Any = None, max_judged: int | None = None,
            constants: Mapping[str, Any] | None = None, templates: Any = None, max_features: int | None = None,
            features_per_round: int = 8, max_new_tokens: int = 96, response_tokens: int = 160,
            contrastive: bool = True, on_task: bool = True, temperature: float = 0.8, top_p: float = 0.9,
            show_progress: bool = True, **map_kwargs: Any) -> AugmentResult:
    """Augment ``ds`` with samples covering the features ``anchor`` covers and ``ds`` misses.

    See :func:`augment_with_fac` for the arguments; this returns the report and run folder too.
    """
    check_not_spawning()
    unknown = sorted(set(map_kwargs) - set(_MAP_KWARGS))
    if unknown:
        raise FacInputError(f"unknown argument(s) {unknown}; map-style arguments accepted: {list(_MAP_KWARGS)}")
    _check_counts(budget=budget, max_calls=max_calls, max_features=max_features)
    num_proc = map_kwargs.get("num_proc")
    if num_proc is not None and (isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1):
        raise FacInputError(f"num_proc={num_proc!r} must be a positive number of processes")
    if len(ds) == 0:
        raise FacInputError("the dataset has no rows: there is nothing to measure or augment")
    data_shape = shape_of(ds, shape=shape, column=column)
    settings = Settings(samples_per_feature, max_new_tokens=max_new_tokens, response_tokens=response_tokens,
                        features_per_round=features_per_round, contrastive=contrastive, on_task=on_task,
                        temperature=temperature, top_p=top_p)
    prompts = PromptSet.load(data_shape.name, templates)
    data_items = [data_shape.encoded(row) for row in ds]
    if data_shape.name == "preference" and any(isinstance(item, list) for item in data_items):
        raise FacInputError("preference rows with chat-form prompts are not supported yet: give prompt, chosen and "
                            "rejected as strings, or pass shape='messages' with a messages column")
    anchor_items, anchor_rows = _anchor_items(anchor, anchor_column)
    consts = _constants(ds, anchor_rows, data_shape, constants)

    from fac_metric.llm import get_generator

    ranks = Ranks.current()
    on_device = {"device": ranks.device} if ranks.device else {}  # each process on its own GPU
    # A bad generator, relevance or δ fails here, before any encoding.
    local = isinstance(generator, str) and not generator.startswith(("http://", "https://"))
    spec = RelevanceSpec.of(relevance, contrast=contrast, alpha=alpha, guideline=guideline, max_judged=max_judged,
                            generator=judge if judge is not None else generator)
    gen = get_generator(generator, **(on_device if local else {}))
    if spec.mode == "judge" and judge is None:
        spec = RelevanceSpec.of(spec, generator=gen)  # the synthesis generator judges too: loaded once
    # fp32 whatever the CPU: bf16 activations depend on a text's batch-mates, and the encodings
    # decide which samples are kept, which must not depend on how many processes run.
    space = get_feature_space(feature_space, dtype="float32", **on_device)
    scorer = Scorer(space, threshold=threshold, relevance=spec, show_progress=show_progress and ranks.main)
    thr = scorer.threshold
    key = _run_key(data_items, anchor_items, space.fingerprint, thr.delta, spec.describe(), gen.name, seed,
                   asdict(settings), prompts.fingerprint(), data_shape)
    run_dir = Path(cache_dir) if cache_dir is not None else fac_cache_dir() / "augment"
    run_dir = run_dir / key
    # Held until the run is done: the same call running twice would pay for every call twice.
    with RunLock(run_dir, ranks.rank):
        if not map_kwargs.get("load_from_cache_file", True) and ranks.main and run_dir.exists():
            _clear(run_dir)
        ranks.barrier()
        batch_size = int(map_kwargs.get("batch_size") or 32)
        desc = map_kwargs.get("desc") or "Encoding"
        if num_proc is not None and num_proc > 1 and ranks.main:
            # The blocks land in the run's cache and are read back below as if encoded here.
            for name, items in (("data", data_items), ("anchor", anchor_items)):
                encode_blocks_in_workers(space, items, run_dir / "encoded" / name, num_proc, batch_size=batch_size)
        ranks.barrier()
        work: dict[str, Any] = {"rank": ranks.rank, "world": ranks.world, "data": {}, "anchor": {}}
        data_prof, data_active = profile_spread(space, data_items, ranks, thr, cache=run_dir / "encoded" / "data",
                                                batch_size=batch_size, show_progress=show_progress and ranks.main,
                                                desc=f"{desc} data", work=work["data"])
        anchor_prof, anchor_active = profile_spread(space, anchor_items, ranks, thr, cache=run_dir / "encoded" / "anchor",
                                                    batch_size=batch_size, show_progress=show_progress and ranks.main,
                                                    desc=f"{desc} anchor", work=work["anchor"])
        # Chosen once, by the main process: a judge's answers can differ between processes, and
        # every process must work through the same missing features.
        chosen = ranks.gather([(0, scorer.relevant(anchor_prof))] if ranks.main else [])[0]
        before = scorer.fac(data_prof, anchor_prof, chosen)
        missing = before.missing[:max_features] if max_features is not None else before.missing

        def make_target(feature: int) -> Target:
            rows = _strongest(anchor_active, feature)
            spans = _anchor_spans(space, [anchor_items[r] for r in rows], feature)
            scale = float(space.scales[feature])
            summary = _plain(space.fact(feature).get("summary"))
            return Target(feature, summary, tuple(feature_spans(space, feature, spans)), scale,
                          float(thr.per_latent[feature]), tuple(_example(anchor_items[r]) for r in rows))

        gate = _task_gate(anchor_prof, anchor_active, space, thr) if settings.on_task else None

        dedup = DedupIndex([_as_text(item) for item in data_items], data_active, settings.near_duplicate)
        synth = Synthesizer(space, gen, data_shape, prompts, Journal(run_dir / "journal", ranks.rank), settings=settings,
                            seed=seed, threshold=thr, dedup=dedup, ranks=ranks, gate=gate, show_progress=show_progress)
        result = synth.run(missing, make_target, budget=budget, max_calls=max_calls)
        # Who did what: each process' encoded blocks, features and generator calls (for logs and tests).
        work.update(features=synth.features_done, calls=synth.calls_now)
        _write_json(run_dir / "work" / f"rank-{ranks.rank}.json", work)

        after_prof = data_prof.merge(scorer.profile(encode_one_by_one(space, [r.text for r in result.rows]), name="new rows")) \
            if result.rows else data_prof
        after = scorer.fac(after_prof, anchor_prof, chosen)
        out = _assemble(ds, data_shape, result.rows, consts, gen.name, keep_in_memory=map_kwargs.get("keep_in_memory"))
        report = _report(before, after, result, gen.name, data_shape, settings, seed, thr.delta, budget, max_calls,
                         missing, consts, len(ds), run_dir, gate)
        # What a dataset card needs to say which features these FACs counted.
        report["feature_space"] = {"spec": space.source.spec if space.source else None, "model": space.model_name,
                                   "hook": space.reader.hook, "d_sae": space.d_sae, "fingerprint": space.fingerprint}
        if ranks.main:
            _write_json(run_dir / "report.json", report)
            data_prof.save(run_dir / "profiles" / "data")
            anchor_prof.save(run_dir / "profiles" / "anchor")
            with open(run_dir / "attempts.jsonl", "w", encoding="utf-8") as fh:
                for a in result.attempts:
                    fh.write(json.dumps(a.record(), ensure_ascii=False) + "\n")
            logger.info("FAC %.3f -> %.3f with %d new rows (%d generator calls, acceptance %.2f); report: %s",
                        before.fac or 0.0, after.fac or 0.0, len(result.rows), result.calls,
                        report["synthesis"]["acceptance_rate"], run_dir / "report.json")
        return AugmentResult(out, report, run_dir)


def augment_with_fac(self, anchor, budget: int | None = None, max_calls: int | None = None,
                     samples_per_feature: int = 2, column: str | None = None, generator: Any = "local",
                     relevance: str | Sequence[int] | RelevanceSpec = DEFAULT_RELEVANCE, threshold: float | None = None,
                     seed: int = 0, cache_dir: str | os.PathLike | None = None, **kwargs: Any):
    """A new dataset: these rows unchanged, plus verified synthetic rows covering the features
    ``anchor`` covers and these rows miss (FAC Synthesis), each with provenance columns.

    ``anchor``: a ``Dataset`` (its text column found by shape, or ``anchor_column=``) or a list of
    strings or chats, representative of the task. ``budget``: accepted rows wanted (None: one
    pass over the missing features); ``max_calls``: cap on generator calls (never exceeded).
    ``samples_per_feature``: step-2 draws per feature (1-2 in the paper). ``column``/``shape=``:
    override what is encoded and synthesised (see :mod:`fac_datasets_ext.shapes`).
    ``generator``: ``"local"`` (the embedded model), a model folder, an ``http(s)://.../v1``
    endpoint, or a ``Generator``. ``relevance``: ``"contrast"``, ``"all"``, ``"judge"``, a list of
    feature ids or a ``RelevanceSpec``, with the same options as ``fac_metric.score``:
    ``contrast=``, ``alpha=``, ``guideline=``, ``max_judged=`` and ``judge=`` (the judge's LLM;
    default: ``generator``). ``threshold``: δ (default: the space's). ``seed``: same seed, same
    rows, for 1 or N processes. ``cache_dir``: where the run folder (journal, encodings,
    ``report.json``) lives. Encoding runs in float32 whatever the CPU or GPU, so that which
    samples are kept never depends on batches or the number of processes.

    Keyword-only: ``feature_space``, ``shape``, ``anchor_column``, ``constants`` (values for
    columns not generated, e.g. ``{"label": 1}``; by default a value every anchor row shares),
    ``templates`` (a folder or dict overriding prompt templates), ``max_features``,
    ``features_per_round``, ``max_new_tokens``, ``response_tokens``, ``contrastive`` (False: the
    one-step baseline), ``on_task`` (False: no on-task gate), ``temperature`` and ``top_p`` (the
    generator's sampling, default 0.8 and 0.9), ``show_progress``; and the
    map-style ``batch_size`` (encoding), ``desc``, ``load_from_cache_file`` (False: start the run
    afresh) and ``keep_in_memory``. ``push_to_hub="namespace/name"`` (with ``private``) then
    publishes the new rows as a Hub dataset whose card records how they were made
    (:mod:`fac_datasets_ext.publishing`; checked before any work, so offline it fails at once).
    """
    push = kwargs.pop("push_to_hub", None)
    private = kwargs.pop("private", False)
    if push is not None:
        from fac_metric.publish import check_can_upload

        check_can_upload(push)  # before an hour of generator calls, not after
    out = augment(self, anchor, budget, max_calls, samples_per_feature, column, generator, relevance, threshold,
                  seed, cache_dir, **kwargs)
    if push is not None:
        from .publishing import push_augmented

        push_augmented(out.dataset, out.report, push, private=private)
    return out.dataset


STREAM_ROWS = 10_000
"""Rows of a stream an ``IterableDataset.augment_with_fac`` measures and augments by default."""


def augment_stream(self, anchor, budget: int | None = None, *args: Any, max_rows: int = STREAM_ROWS, **kwargs: Any):
    """``augment_with_fac`` on an ``IterableDataset``: a bounded pass.

    The first ``max_rows`` rows are read (memory: those rows, whatever the stream's length),
    measured and augmented as a ``Dataset`` would be (FAC before/after, the report and the
    run folder are about those rows); the result is an ``IterableDataset``: the whole stream,
    every row with the provenance columns, then the new rows.
    """
    import datasets

    check_not_spawning()  # before reading the stream
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise FacInputError(f"max_rows={max_rows!r} must be a positive number of rows to read from the stream")
    rows = list(self.take(max_rows))
    if not rows:
        raise FacInputError("the stream has no rows: there is nothing to measure or augment")
    features = declared_features(self)
    head = datasets.Dataset.from_list(rows, features=features)
    augmented = augment_with_fac(head, anchor, budget, *args, **kwargs)
    new_rows = augmented.select(np.flatnonzero(augmented["fac_synthetic"]))  # (filter() would draw a progress bar)
    prov = _provenance_features(head)
    if all(name in features for name in PROVENANCE_COLUMNS):  # an augmented stream keeps its provenance
        original = self
    else:
        blank = {"fac_synthetic": False, "fac_target_feature": None, "fac_activation": None, "fac_generator": None}
        original = self.map(lambda row: {k: v for k, v in blank.items() if k not in row}, features=prov)
    if len(new_rows) == 0:
        return original
    return datasets.concatenate_datasets([original, new_rows.to_iterable_dataset()])


def augment_dataset_dict(self, anchor, budget: int | None = None, *args: Any, split: str | None = None,
                         **kwargs: Any):
    """``augment_with_fac`` on each split (each its own run and budget), or only on ``split``;
    the other splits get the provenance columns of original rows, so every split has one schema."""
    import datasets

    if split is not None and split not in self:
        raise FacInputError(f"split {split!r} is not in the DatasetDict; it has {list(self)}")
    names = [split] if split is not None else list(self)
    return datasets.DatasetDict({name: augment_with_fac(ds, anchor, budget, *args, **kwargs) if name in names
                                 else with_provenance(ds) for name, ds in self.items()})


def register() -> None:
    """Attach the methods (done by ``import fac_datasets_ext``)."""
    import datasets

    datasets.Dataset.augment_with_fac = augment_with_fac
    datasets.DatasetDict.augment_with_fac = augment_dataset_dict
    datasets.IterableDataset.augment_with_fac = augment_stream


# ---------------------------------------------------------------------------------------- helpers
def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0):
            raise FacInputError(f"{name}={value!r} must be a whole number >= 0, or None")


def _anchor_items(anchor: Any, column: str | None) -> tuple[list, Any]:
    """The anchor's items to encode and, for a ``Dataset``, the dataset itself (for constants)."""
    import datasets

    if isinstance(anchor, datasets.DatasetDict):
        raise FacInputError("anchor is a DatasetDict: pass one split, e.g. anchor=task['train']")
    if isinstance(anchor, datasets.Dataset):
        if len(anchor) == 0:
            raise FacInputError("the anchor dataset has no rows: it must show what the task looks like")
        shape = shape_of(anchor, column=column)
        return [shape.encoded(row) for row in anchor], anchor
    if isinstance(anchor, (str, bytes)) or not isinstance(anchor, Sequence):
        raise FacInputError(f"anchor must be a Dataset or a list of strings or chats, not {type(anchor).__name__}")
    if not anchor:
        raise FacInputError("the anchor is empty: it must show what the task looks like")
    return list(anchor), None


def _as_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, list):
        return "\n".join(str(m.get("content", "")) for m in item if isinstance(m, Mapping))
    return ""


def _run_key(data_items, anchor_items, *parts: Any) -> str:
    h = hashlib.blake2b(digest_size=10)
    for items in (data_items, anchor_items):
        for item in items:
            h.update(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
            h.update(b"\x1e")
        h.update(b"\x1d")
    h.update(json.dumps([p if not isinstance(p, DataShape) else asdict(p) for p in parts], sort_keys=True,
                        default=str).encode())
    return h.hexdigest()


def _strongest(acts, feature: int, k: int = ANCHOR_SPANS) -> list[int]:
    """The ``k`` anchor texts in which ``feature`` fires most, strongest first (``acts``: the
    anchor's entries above δ, which a missing feature always has)."""
    where = np.flatnonzero(acts.indices == feature)
    rows = np.searchsorted(acts.indptr, where, side="right") - 1
    order = np.lexsort((rows, -acts.values[where]))[:k]
    return [int(r) for r in rows[order]]


def _anchor_spans(space, items: list, feature: int) -> list:
    """The spans of ``feature`` in ``items`` (a few anchor texts), each text encoded alone."""
    heaps = TopSpans.for_space(space, max(len(items), 1))
    for item in items:
        for chunk in space.iter_peaks([item], batch_size=1, show_progress=False):
            heaps.update(chunk)
    return heaps.top(feature)


def _example(item: Any, max_chars: int = EXAMPLE_CHARS) -> str:
    """An anchor item as a few-shot example of a sample: a text, or a chat's first user turn."""
    if isinstance(item, list):
        users = [str(m.get("content", "")) for m in item if isinstance(m, Mapping) and m.get("role") == "user"]
        text = users[0] if users else _as_text(item)
    else:
        text = str(item)
    text = text.strip()
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " ..."


def _task_gate(anchor_prof, anchor_active, space, thr) -> TaskGate | None:
    """The on-task gate over the anchor's non-generic features (those match FAC counts), or None
    (with a warning) for an anchor too small to calibrate it."""
    columns = all_features(anchor_prof, space.background_profile(thr)).features
    try:
        return TaskGate(anchor_active, thr, columns)
    except FacInputError as err:
        logger.warning("synthesis runs without the on-task gate: %s", err)
        return None


def _constants(ds, anchor_rows, shape: DataShape, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values for columns the new rows do not generate: the user's, else one every anchor row shares."""
    produced = {shape.column, *shape.responses, *([shape.input_column] if shape.input_column else [])}
    out = dict(given or {})
    unknown = sorted(set(out) - set(ds.column_names))
    if unknown:
        raise FacInputError(f"constants for columns the dataset does not have: {unknown}; it has {ds.column_names}")
    for name in ds.column_names:
        if name in produced or name in out or anchor_rows is None or name not in anchor_rows.column_names:
            continue
        values = {json.dumps(v, sort_keys=True, default=str) for v in anchor_rows[name]}
        if len(values) == 1:
            out[name] = anchor_rows[0][name]
    return out


def _provenance_features(ds):
    import datasets

    features = ds.features.copy()
    features.update({"fac_synthetic": datasets.Value("bool"), "fac_target_feature": datasets.Value("int64"),
                     "fac_activation": datasets.Value("float32"), "fac_generator": datasets.Value("string")})
    return features


def with_provenance(ds):
    """``ds`` with the :data:`PROVENANCE_COLUMNS` of original rows (not synthetic, no target):
    what every row of an augmented dataset carries, so splits augmented or not share one schema."""
    features = _provenance_features(ds)
    n = len(ds)
    for name, values in (("fac_synthetic", [False] * n), ("fac_target_feature", [None] * n),
                         ("fac_activation", [None] * n), ("fac_generator", [None] * n)):
        if name not in ds.column_names:  # an already augmented dataset keeps its provenance
            ds = ds.add_column(name, values, feature=features[name])
    return ds


def _assemble(ds, shape: DataShape, rows, constants: Mapping[str, Any], generator_name: str, *,
              keep_in_memory: bool | None = None):
    import datasets

    features = _provenance_features(ds)
    original = with_provenance(ds)
    if not rows:
        return original
    new = [{**shape.new_row(r.text, r.generated, ds.column_names, constants), "fac_synthetic": True,
            "fac_target_feature": r.feature, "fac_activation": r.activation, "fac_generator": generator_name}
           for r in rows]
    added = datasets.Dataset.from_list(new, features=features)
    out = datasets.concatenate_datasets([original, added])
    return out.flatten_indices(keep_in_memory=bool(keep_in_memory)) if keep_in_memory else out


def _report(before, after, result, generator_name, shape, settings, seed, delta, budget, max_calls, missing, consts,
            n_rows, run_dir, gate) -> dict:
    final = [a for a in result.attempts if a.step in ("step2", "one_step")]
    passed = sum(a.passed for a in final)
    off_task = sum(a.passed and not a.on_task for a in final)
    covered_now = sorted(set(after.covered) - set(before.covered))
    return {
        "fac_before": before.fac, "fac_after": after.fac,
        "covered_before": before.n_covered, "covered_after": after.n_covered, "relevant": before.n_reference,
        "relevance": before.relevance, "threshold": delta,
        "newly_covered": covered_now, "still_missing": after.missing,
        "rows": n_rows, "new_rows": len(result.rows),
        "synthesis": {
            "generator": generator_name, "shape": shape.name, "seed": seed, "budget": budget, "max_calls": max_calls,
            "settings": asdict(settings), "features_missing": len(missing), "features_tried": len(result.features_tried),
            "calls": result.calls, "calls_this_run": result.calls_now, "stopped_by": result.stopped_by,
            "samples": len(final), "passed_threshold": passed, "accepted": len(result.rows),
            "acceptance_rate": (len(result.rows) / len(final)) if final else 0.0,
            "pass_rate": (passed / len(final)) if final else 0.0,
            "rejected": _count_reasons(final), "constants": consts,
            "off_task": off_task,
            "on_task_gate": None if gate is None else {"cutoff": gate.cutoff, "quantile": gate.quantile,
                                                       "anchor_texts": int(gate.held_out.size),
                                                       "features": int(gate.columns.size)},
        },
        "run_dir": str(run_dir),
    }


def _count_reasons(attempts) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in attempts:
        if not a.accepted:
            # by kind: "off-task (best match 0.135 < 0.169)" counts as "off-task"
            kind = (a.reason or "not accepted").split(" (")[0]
            out[kind] = out.get(kind, 0) + 1
    return out


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _clear(run_dir: Path) -> None:
    import shutil

    shutil.rmtree(run_dir)


__all__ = ["augment", "augment_with_fac", "augment_stream", "with_provenance", "AugmentResult", "PROVENANCE_COLUMNS",
           "STREAM_ROWS", "register"]


def _plain(summary: str | None) -> str:
    """The LLM-free summary without its span counts, which small generators copy into samples."""
    if not summary:
        return "(no summary: see the fragments)"
    return re.sub(r"\s*\(\d+/\d+\)", "", summary)
