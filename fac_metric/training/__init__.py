"""Training: a TopK SAE on one layer of a causal LM, calibrated into a feature-space folder.

Owns: the training corpora (fetched from packages), residual extraction to shards, SAE training
with checkpoints (sae-lens), quality checks, calibration (scales, background: a *new* space)
and collecting spans and labels into ``features.jsonl``. Must not: be needed to measure: a
trained space is a folder that ``fac_metric.space`` loads.
"""

from fac_metric._lazy import lazy_names

_TS = "fac_metric.training.train_space"
__getattr__, __dir__ = lazy_names(__name__, {
    "TrainSpaceArgs": _TS, "run": _TS, "calibrate": _TS, "describe": _TS, "default_rows": _TS,
    "rows_within": _TS, "row_items": _TS, "finalize": _TS,
    "SAETrainConfig": "fac_metric.training.sae_training",
    "split_heldout": "fac_metric.training.corpora", "default_training_rows": "fac_metric.training.corpora",
})
__all__ = sorted(__dir__())
