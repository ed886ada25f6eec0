# Copyright 2026 The fac authors. Licensed under the Apache License, Version 2.0.
"""Feature Activation Coverage (FAC): how much of a task's SAE feature space a dataset covers."""

import datasets
import evaluate

from fac_metric.errors import FacInputError
from fac_metric.scoring import score

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
    relevant_features (`list` of `int`, *optional*): restrict FAC to these feature ids. By default
        relevant = the anchor's enriched features: active on a larger share of anchor texts than
        of the shipped background corpus, and on at most half of the background.
    batch_size (`int`, defaults to 32): texts per forward pass.
    show_progress (`bool`, defaults to False): show progress bars.
    n_missing (`int`, defaults to 100): how many missing features to list (-1 for all).

Returns:
    fac (`float` or `None`): the coverage, in [0, 1]; `None` when no feature is relevant.
    n_covered (`int`): relevant anchor features the data covers.
    n_relevant (`int`): relevant anchor features (the denominator).
    missing_features (`list` of `int`): missing feature ids, most important first.
    threshold (`float`): the δ used.
    relevance (`str`): how relevant features were chosen.

Examples:
    >>> import fac_metric
    >>> fac = fac_metric.load()
    >>> results = fac.compute(
    ...     data=["Write a short poem about autumn leaves."],
    ...     anchor=["Write a poem about the ocean in exactly four lines.",
    ...             "Summarize this paragraph in two sentences, without commas."],
    ... )
    >>> sorted(results)
    ['fac', 'missing_features', 'n_covered', 'n_relevant', 'relevance', 'threshold']
    >>> 0.0 < results["fac"] < 1.0 and len(results["missing_features"]) > 0
    True
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

    def compute(self, *, data=None, **kwargs):
        """Compute FAC (arguments below); refuses empty data with a clear message."""
        # evaluate fails with an IndexError deep inside feature inference on an empty list.
        if data is not None and len(data) == 0:
            raise FacInputError("data is empty: pass at least one text (or add_batch before compute)")
        return super().compute(**kwargs) if data is None else super().compute(data=data, **kwargs)

    def _compute(self, data, anchor=None, feature_space=None, threshold=None, relevant_features=None,
                 batch_size=32, show_progress=False, n_missing=100):
        out = score(data, anchor, feature_space=feature_space, threshold=threshold,
                    relevant_features=relevant_features, batch_size=batch_size, show_progress=show_progress)
        r = out.result
        return {
            "fac": r.fac,
            "n_covered": r.n_covered,
            "n_relevant": r.n_reference,
            "missing_features": r.missing if n_missing < 0 else r.missing[:n_missing],
            "threshold": r.threshold,
            "relevance": r.relevance,
        }
