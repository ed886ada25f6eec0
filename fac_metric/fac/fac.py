# Copyright 2026 The fac authors. Licensed under the Apache License, Version 2.0.
"""Feature Activation Coverage (FAC): how much of a task's SAE feature space a dataset covers."""

import datasets
import evaluate

import inspect
import os
import threading
import warnings
from pathlib import Path

from fac_metric import FacInputError, FacWarning, get_feature_space, score
from fac_metric.measure import SparseActivations
from fac_metric.space.tokenization import NonBlank, check_item, check_items
from fac_metric.meaning import measurement_result
from fac_metric.measure import DEFAULT_COVERAGE

_DESCRIPTION = """
Feature Activation Coverage (FAC) measures the diversity of a dataset in the feature space of an
LLM, not in its text. Each text is read by a causal LM up to one layer; a sparse autoencoder (SAE)
turns the residual stream into features, pooled by max over the text's own tokens. A feature is
*covered* when some text activates it above δ (relative to the feature's typical strength).

FAC = (relevant anchor features the data covers) / (relevant features the anchor covers), where
the anchor is data representative of the task. The features the anchor covers and the data does
not are the *missing features*: the samples worth adding. FAC tracks downstream results far better
than text-diversity metrics (Li et al., "Less is Enough", ICML 2026).

The default feature space (SmolLM2-135M-Instruct, layer 15, an 8192-latent TopK SAE) ships with
the package and runs offline on a CPU.
"""

_KWARGS_DESCRIPTION = """
Args:
    data (`list` of `str` or chats): the dataset to measure. A chat is a list of
        {"role", "content"} messages; only message contents count.
    anchor (`list` of `str`/chats, or `str`, *optional*): data representative of the task, or the
        folder of a profile saved with `FeatureProfile.save`. Without it, FAC is the share of the
        feature space's live features that the data covers.
    feature_space (`str`, *optional*): a feature-space folder or Hub repo id. Defaults to the
        embedded SmolLM2 space. Loaded once per process and reused by later calls.
    threshold (`float`, *optional*): δ, relative to each feature's scale. Defaults to the space's.
    relevance (`str`, `list` of `int` or `RelevanceSpec`, *optional*): how the task-relevant
        features are chosen, or the feature ids to use. Defaults to "all" with coverage="match",
        and to "contrast" with coverage="binary" or when `contrast` is given.
        "contrast": features the anchor activates significantly more often than a contrast set
        (one-sided Fisher exact test, Benjamini-Hochberg FDR `alpha`); "judge": an LLM judges each
        feature's explanation and spans against `guideline` (the paper's method); "all": every
        non-generic feature the anchor covers.
    contrast (`list` of `str`/chats, or `str`, *optional*): the contrast set of "contrast" mode
        (e.g. a classifier's negative class). Defaults to the feature space's generic background.
    alpha (`float`, defaults to 0.05): false-discovery rate of the contrast test.
    generator (`str`, *optional*): the judge of "judge" mode: "local" (the embedded SmolLM2),
        a model folder, or an OpenAI-compatible URL such as "http://127.0.0.1:8000/v1".
    guideline (`str`, *optional*): "toxicity", "helpfulness", "instruction_following",
        "sycophancy", or a sentence describing the task ("judge" mode).
    max_judged (`int`, defaults to 200): judge only the anchor's most frequent N candidates.
    batch_size (`int`, defaults to 32): texts per forward pass.
    show_progress (`bool`, defaults to False): show progress bars.
    n_missing (`int`, defaults to 100): how many missing features to list (-1 for all).
    baselines (`bool`, defaults to False): also compute the usual text-diversity and embedding
        baselines of the same texts (needs `pip install "fac-metric[baselines]"`).
    coverage (`str`, defaults to "match"): "match": per anchor text, the best overlap of its
        relevant features with one data text, averaged (it predicted what a classifier learns
        from a training set better than binary FAC and every baseline on both tasks of
        docs/results.md, and does not saturate; needs texts or activations, not saved profiles),
        or "binary": the paper's FAC, the share of relevant features some data text covers.

Returns:
    fac (`float` or `None`): the coverage, in [0, 1]; `None` when no feature is relevant.
    binary_fac (`float` or `None`): the share of the relevant features some data text covers (the
        paper's FAC when relevance is "contrast" or "judge"; equal to `fac` with coverage="binary").
    coverage (`str`): how `fac` was counted.
    n_covered (`int`): relevant anchor features the data covers.
    n_relevant (`int`): relevant anchor features (the denominator).
    missing_features (`list` of `int`): missing feature ids, most important first.
    threshold (`float`): the δ used.
    relevance (`str`): how relevant features were chosen.
    relevance_warning (`str` or `None`): set when too few features are relevant for a fine FAC.
    relevant_features (`list` of `dict`): the 20 relevant features the anchor fires most, each with
        its label, anchor and contrast shares, q-value (or judge decision) and whether it is *form*
        (its top spans peak mostly on punctuation or function words).
    form_warning (`str` or `None`): set when most relevant features are form-like, i.e. FAC may
        measure how the anchor is phrased rather than what it is about.
    baselines (`dict`, only with `baselines=True`): distinct_1, distinct_2, ngram_entropy_2,
        self_bleu, mean_cosine_distance, vendi, and with an anchor cluster_coverage and
        soft_coverage (`None` where undefined, e.g. self-BLEU of one text).

Examples:
    >>> import fac_metric
    >>> from fac_metric.examples import load_example
    >>> fac = fac_metric.load()
    >>> anchor = load_example("ifeval_anchor")[:150]        # IFEval prompts: the task
    >>> results = fac.compute(data=["Write a short poem about autumn leaves."], anchor=anchor)
    >>> sorted(results)
    ['binary_fac', 'coverage', 'fac', 'form_warning', 'missing_features', 'n_covered', 'n_relevant', 'relevance', 'relevance_warning', 'relevant_features', 'threshold']
    >>> results["coverage"], results["relevance"], 0.0 < results["fac"] < 1.0, len(results["missing_features"]) > 0
    ('match', 'all', True, True)
"""

_CITATION = """
@inproceedings{li2026less,
  title     = {Less is Enough: Synthesizing Diverse Data in Feature Space of LLMs},
  author    = {Li and Wu and Li and Hu and Liu},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2026},
  note      = {arXiv:2602.10388}
}
"""

_CHAT = [{"role": datasets.Value("string"), "content": datasets.Value("string")}]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FAC(evaluate.Measurement):
    """Feature Activation Coverage of a dataset against a task's anchor data."""

    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"data": datasets.Value("string")}),
                datasets.Features({"data": _CHAT}),
            ],
            reference_urls=["https://arxiv.org/abs/2602.10388"],
        )

    def __init__(self, *args, **kwargs):
        # FAC's options given at load time (evaluate.load(..., anchor=A)) are this module's
        # defaults: evaluate.combine forwards every compute() keyword to every module, so
        # options meant for FAC alone must be set here to combine it with other measurements.
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _OPTIONS}
        _check_options(options)
        self._defaults = options
        # evaluate keeps one accumulation per module (its Arrow writer, cache file and data):
        # two threads in compute() at once read and close each other's files. The lock makes
        # add/add_batch/compute atomic, so threads sharing one loaded module each get their own
        # result (tests/test_evaluate_module.py). Re-entrant: compute() calls add_batch() inside.
        self._state_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_state_lock", None)  # a lock does not pickle; a copy gets its own
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._state_lock = threading.RLock()

    def compute(self, *, data=None, **kwargs):
        """Compute FAC (arguments below); refuses empty data and bad options before any work.
        Options given to ``evaluate.load`` are defaults that these override. Safe to call from
        several threads on one module: calls run one at a time."""
        kwargs = {**getattr(self, "_defaults", {}), **_without_empty_pair(kwargs)}
        _check_options(kwargs)
        # evaluate fails with an IndexError deep inside feature inference on an empty list.
        if data is not None and not isinstance(data, (str, bytes)) and hasattr(data, "__len__") and len(data) == 0:
            raise FacInputError("data is empty: pass at least one text (or add_batch before compute)")
        with self._state_lock:
            if self.num_process > 1:
                return self._compute_distributed(data, kwargs)
            return super().compute(**kwargs) if data is None else super().compute(data=data, **kwargs)

    def _compute_distributed(self, data, kwargs: dict):
        """``num_process`` > 1: every process encodes the texts it added, then process 0 merges.

        evaluate alone would gather every process's texts on process 0 and encode them all
        there. Here each process finalises its own cache file, encodes those texts into
        activations saved beside it (``<cache file>.fac.safetensors``), and only then takes
        evaluate's usual path, whose file locks make process 0 wait for every other process:
        process 0 then scores the concatenated activations (rank order, evaluate's order) and
        returns the result, equal to one process scoring all texts; the others return None.
        """
        if data is not None:
            self.add_batch(data=data)
        if self.writer is None:
            raise FacInputError(f"process {self.process_id} of {self.num_process} has no data: every process must "
                                "add its share (add_batch or compute(data=...)) before compute()")
        own = self.cache_file_name
        self.writer.finalize()
        self.writer = None
        texts = _read_arrow(own, self.selected_feature_format)
        space = get_feature_space(kwargs.get("feature_space"))
        kept = NonBlank(texts)
        acts = space.encode(kept, batch_size=kwargs.get("batch_size", 32), show_progress=kwargs.get("show_progress", False))
        if kept.dropped:
            warnings.warn(f"data: dropped {kept.dropped} empty or whitespace-only text(s) of {len(texts)} on process "
                          f"{self.process_id}", FacWarning, stacklevel=3)
        tmp = Path(f"{own}.fac.tmp.safetensors")
        acts.save(tmp)
        os.replace(tmp, f"{own}.fac.safetensors")  # whole or absent: process 0 never reads half a file
        self._encoded_here = acts.n_texts
        return super().compute(**{**kwargs, "_shards": True})

    def add_batch(self, *, data=None, **kwargs):
        """Add texts (strings, or chats: lists of {"role", "content"} messages) to score later;
        every batch until ``compute`` must hold the same kind (evaluate stores one per column)."""
        kwargs = _without_empty_pair(kwargs)
        with self._state_lock:
            if data is None:
                return super().add_batch(**kwargs)
            return super().add_batch(data=self._checked(check_items(data)), **kwargs)

    def add(self, *, data=None, **kwargs):
        """Add one text (a string or a chat) to score later."""
        kwargs = _without_empty_pair(kwargs)
        with self._state_lock:
            if data is None:
                return super().add(**kwargs)
            return super().add(data=self._checked([check_item(data, 0)])[0], **kwargs)

    def _checked(self, items: list) -> list:
        """``items`` of one kind, the kind of everything added since the last ``compute`` (chats
        cut to role and content, the keys the module stores); a clear error for a mix."""
        if self.writer is None:  # nothing added yet: a new accumulation
            self._fac_kind = None
        kinds = ["string" if isinstance(item, str) else "chat" for item in items]
        seen = getattr(self, "_fac_kind", None) or kinds[0]
        if any(kind != seen for kind in kinds):
            first = next(i for i, kind in enumerate(kinds) if kind != seen)
            raise FacInputError(f"data mixes strings and chats (item {first} is a {kinds[first]}, earlier ones are "
                                f"{seen}s): evaluate stores one kind, so pass all strings or all chats (a string s "
                                "scores as the chat [{'role': 'user', 'content': s}] in the default space)")
        self._fac_kind = seen
        return [item if isinstance(item, str) else [{"role": m["role"], "content": m["content"]} for m in item]
                for item in items]

    def _compute(self, data, anchor=None, feature_space=None, threshold=None, relevance=None, contrast=None,
                 alpha=None, generator=None, guideline=None, max_judged=None, batch_size=32,
                 show_progress=False, n_missing=100, baselines=False, coverage=DEFAULT_COVERAGE, _shards=False):
        if _shards:  # process 0 of a distributed compute: the texts were encoded where they were added
            if baselines:
                raise FacInputError("baselines=True reads the texts themselves: compute them in one process")
            data = self._gathered_activations()
        out = score(data, anchor, feature_space=feature_space, threshold=threshold, relevance=relevance,
                    contrast=contrast, alpha=alpha, generator=generator, guideline=guideline, max_judged=max_judged,
                    batch_size=batch_size, show_progress=show_progress,
                    anchor_spans=0, baselines=baselines, coverage=coverage)
        return measurement_result(out, n_missing)

    def _gathered_activations(self) -> SparseActivations:
        """Every process's activations, in rank order (process 0 holds all their locks by now)."""
        parts = []
        for path in self.file_paths:
            shard = Path(f"{path}.fac.safetensors")
            parts.append(SparseActivations.load(shard))
            shard.unlink()
        return SparseActivations.concat(parts)


def _read_arrow(path: str, features) -> list:
    """The ``data`` column of one evaluate cache file (as evaluate's own _finalize reads them)."""
    from datasets import Dataset, DatasetInfo
    from datasets.arrow_reader import ArrowReader

    reader = ArrowReader(path="", info=DatasetInfo(features=features))
    return Dataset(**reader.read_files([{"filename": path}]))["data"]


_OPTIONS = tuple(p for p in inspect.signature(FAC._compute).parameters if p not in ("self", "data", "_shards"))


def _without_empty_pair(kwargs: dict) -> dict:
    """``kwargs`` less the ``predictions=None, references=None`` that ``evaluate.combine`` sends
    every module; FAC measures ``data``, so either one given is a clear error."""
    for name in ("predictions", "references"):
        if name in kwargs:
            if kwargs[name] is not None:
                raise FacInputError(f"FAC is a measurement of data=, not {name}=: pass the texts as data=")
            kwargs = {k: v for k, v in kwargs.items() if k != name}
    return kwargs


def _check_options(options: dict) -> None:
    """Refuse unknown options and options of the wrong type here, before evaluate stores any data."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise FacInputError(f"unknown argument(s) {unknown}: FAC takes data and {list(_OPTIONS)}")
    n_missing = options.get("n_missing", 100)
    if isinstance(n_missing, bool) or not isinstance(n_missing, int) or n_missing < -1:
        raise FacInputError(f"n_missing={n_missing!r} must be a whole number >= 0, or -1 for all")
    for name in ("show_progress", "baselines"):
        if not isinstance(options.get(name, False), bool):
            raise FacInputError(f"{name}={options[name]!r} must be True or False")
