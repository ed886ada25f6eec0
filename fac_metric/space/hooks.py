"""Where an SAE reads: a hook name, as sae-lens and TransformerLens write it or as a transformers
module path, turned into the module of a Hugging Face model whose input or output is that tensor.

Owns: the per-architecture table (Llama, Mistral, Qwen2/3, Gemma 1/2/3, GPT-2) that places
TransformerLens' ``blocks.L.hook_resid_pre`` (the input of decoder layer L),
``hook_resid_mid`` (the residual after attention: the input of the layer's pre-MLP norm),
``hook_resid_post`` (the layer's output), ``hook_attn_out`` and ``hook_mlp_out``; and the one
preprocessing TransformerLens applies to the residual stream itself: with
``center_writing_weights`` (which sae-lens records in an SAE's
``metadata.model_from_pretrained_kwargs``) every write to the stream of a LayerNorm model has
its mean over the hidden dimension removed, so the stream is the transformers stream minus its
mean. RMSNorm models are never centred (TransformerLens skips them). Must not: run the model or
know about SAEs (``LayerReader`` and ``FeatureSpace`` do).

>>> site = resolve_hook("llama", "blocks.8.hook_resid_pre")
>>> site.module, site.side, site.layer
('model.layers.8', 'input', 8)
>>> resolve_hook("gpt2", "blocks.3.hook_resid_mid", center=True)
HookSite(name='blocks.3.hook_resid_mid', module='transformer.h.3.ln_2', side='input', layer=3, center=True)
>>> resolve_hook("llama", "model.layers.15").side            # a module path reads the module's output
'output'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from fac_metric.errors import FacModelError


class Architecture(NamedTuple):
    """Where one family of transformers models keeps what TransformerLens hooks."""

    layers: str
    """The list of decoder layers."""
    resid_mid: str
    """The module (inside a layer) whose *input* is the residual after attention."""
    attn_out: str
    """The module (inside a layer) whose output is what attention adds to the residual."""
    mlp_out: str
    """The module (inside a layer) whose output is what the MLP adds to the residual."""
    layer_norm: bool
    """LayerNorm (TransformerLens can centre the writes) rather than RMSNorm (it cannot)."""


_LLAMA = Architecture("model.layers", "post_attention_layernorm", "self_attn", "mlp", False)
# Gemma 2/3 normalise each sublayer's output before adding it: what is added is the post-norm's output.
_GEMMA2 = Architecture("model.layers", "pre_feedforward_layernorm", "post_attention_layernorm",
                       "post_feedforward_layernorm", False)
ARCHITECTURES: dict[str, Architecture] = {
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA, "gemma": _LLAMA,
    "gemma2": _GEMMA2, "gemma3_text": _GEMMA2,
    "gpt2": Architecture("transformer.h", "ln_2", "attn", "mlp", True),
}
"""transformers ``config.model_type`` -> where its tensors are."""

_TL_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out)$")


@dataclass(frozen=True)
class HookSite:
    """The tensor an SAE reads: the ``side`` (input or output) of ``module``, centred or not."""

    name: str
    """The hook as named (kept in ``feature_space.json`` and the fingerprint)."""
    module: str
    """The transformers module path (``model.get_submodule(module)``)."""
    side: Literal["input", "output"]
    layer: int | None
    """The decoder layer it belongs to: later layers never need to run."""
    center: bool = False
    """Subtract the mean over the hidden dimension (TransformerLens' ``center_writing_weights``)."""


def is_transformer_lens_hook(hook: str) -> bool:
    """Whether ``hook`` is a TransformerLens name this module places (``blocks.L.hook_...``)."""
    return _TL_HOOK.match(hook) is not None


def resolve_hook(model_type: str, hook: str, *, center: bool = False) -> HookSite:
    """The :class:`HookSite` of ``hook`` in a model of ``model_type`` (``config.model_type``).

    A TransformerLens name is placed by :data:`ARCHITECTURES` (a clear error for others); any
    other name is a module path whose output is read, as fac has always read ``model.layers.N``.
    ``center`` applies to TransformerLens names on LayerNorm models only, as in TransformerLens.
    """
    match = _TL_HOOK.match(hook)
    if match is None:
        if hook.startswith("blocks.") or ".hook_" in hook:
            raise FacModelError(f"hook {hook!r} is not one fac can place: use blocks.L.hook_resid_pre, "
                                "hook_resid_mid, hook_resid_post, hook_attn_out or hook_mlp_out (or a transformers "
                                "module path such as 'model.layers.L')")
        tail = hook.rsplit(".", 1)[-1]
        return HookSite(hook, hook, "output", int(tail) if tail.isdigit() else None)
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise FacModelError(
            f"fac does not know where {model_type!r} models keep TransformerLens' {hook!r}: it places them for "
            f"{', '.join(sorted(ARCHITECTURES))}; name the transformers module instead (hook='model.layers.L' reads "
            "that layer's output, i.e. blocks.L.hook_resid_post)")
    layer, what = int(match.group(1)), match.group(2)
    at = f"{arch.layers}.{layer}"
    module, side = {
        "hook_resid_pre": (at, "input"),
        "hook_resid_mid": (f"{at}.{arch.resid_mid}", "input"),
        "hook_resid_post": (at, "output"),
        "hook_attn_out": (f"{at}.{arch.attn_out}", "output"),
        "hook_mlp_out": (f"{at}.{arch.mlp_out}", "output"),
    }[what]
    return HookSite(hook, module, side, layer, center=bool(center and arch.layer_norm))  # type: ignore[arg-type]


def layers_path(model_type: str) -> str:
    """Where ``model_type`` keeps its decoder layers (``model.layers`` unless the table says otherwise)."""
    arch = ARCHITECTURES.get(model_type)
    return arch.layers if arch is not None else "model.layers"


def centers_writes(sae) -> bool:
    """Whether the SAE was trained on a centred stream: sae-lens loads the model with its
    ``metadata.model_from_pretrained_kwargs``, over ``from_pretrained_no_processing`` (so only
    an explicit ``center_writing_weights: true`` centres)."""
    meta = getattr(getattr(sae, "cfg", None), "metadata", None)
    kwargs = (getattr(meta, "model_from_pretrained_kwargs", None) if meta is not None else None) or {}
    return bool(kwargs.get("center_writing_weights", False))


__all__ = ["ARCHITECTURES", "Architecture", "HookSite", "centers_writes", "is_transformer_lens_hook", "layers_path",
           "resolve_hook"]
