"""The feature space: a causal LM read at one layer, an SAE, and the rule that turns texts into
sparse feature activations.

Owns: loading LMs (the embedded SmolLM2, local folders, Hub ids) and SAEs (sae-lens folders),
tokenising strings and chats by one rule, reading the residual stream at the hooked layer,
``FeatureSpace.encode`` -> ``SparseActivations``, per-latent scales, the background, the
fingerprint, and the space's lifecycle (source, per-process cache, folder on disk). Must not:
count coverage, choose relevant features or compute FAC (``fac_metric.measure``), or prompt
generators (``fac_metric.llm``).
"""

from fac_metric._lazy import lazy_names

_FS = "fac_metric.space.feature_space"
__getattr__, __dir__ = lazy_names(__name__, {
    "FeatureSpace": _FS, "get_feature_space": _FS, "resolve_space_folder": _FS, "SpaceSource": _FS,
    "SpaceConfig": _FS, "PeakChunk": _FS, "DEFAULT_THRESHOLD": _FS,
    "DEFAULT_LM": "fac_metric.space.models", "cache_dir": "fac_metric.space.models", "offline": "fac_metric.space.models",
    "load_lm": "fac_metric.space.models",
    "TextItem": "fac_metric.space.tokenization", "TextRule": "fac_metric.space.tokenization",
    "check_item": "fac_metric.space.tokenization", "check_collection": "fac_metric.space.tokenization",
    "LayerReader": "fac_metric.space.layer_reader", "hook_for_layer": "fac_metric.space.layer_reader",
    "load_sae": "fac_metric.space.sae_io", "default_space_path": "fac_metric.space.defaults",
})
__all__ = sorted(__dir__())
