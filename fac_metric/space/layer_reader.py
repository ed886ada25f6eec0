"""Read one layer's residual stream for the counted tokens of many texts, as cheaply as possible.

Owns: length-bucketed batching, padding masks, dtype, and running the LM only up to the hooked
layer (a forward hook stops the forward there: no later layer and no logits ever run). Must not:
know about SAEs or pooling; ``FeatureSpace`` and SAE training both build on this.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from fac_metric.errors import FacInputError, FacModelError
from fac_metric.space.hooks import HookSite, is_transformer_lens_hook, layers_path, resolve_hook
from fac_metric.space.tokenization import TextItem, TextRule, Tokenized, tokenize


class _StopForward(Exception):
    """Raised by the layer hook to end the forward once the layer we read has run."""


@dataclass
class ResidualBatch:
    """Counted-token residuals of one batch of texts."""

    text_ids: list[int]
    """Positions, in the caller's list, of the texts in this batch (in batch order)."""
    residuals: torch.Tensor
    """``[n_counted_tokens, d_model]``, the texts' counted tokens one after another."""
    lengths: list[int]
    """Counted tokens per text, in batch order (they sum to ``residuals.shape[0]``)."""
    n_tokens: int
    """Tokens run through the model, padding excluded (scaffolding included)."""


def hook_for_layer(layer: int, model_type: str = "llama") -> str:
    """The module path of decoder layer ``layer`` (``model.layers.N`` in Llama-style models,
    ``transformer.h.N`` in GPT-2): its output is TransformerLens' ``blocks.N.hook_resid_post``."""
    return f"{layers_path(model_type)}.{layer}"


def layer_of_hook(hook: str) -> int | None:
    """The decoder layer a hook belongs to (a module path ending in a number, or a
    TransformerLens ``blocks.L.…`` name), None where it names none."""
    if is_transformer_lens_hook(hook):
        return int(hook.split(".")[1])
    tail = hook.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Without those instructions bf16 is emulated: measured 3.4x *slower* than fp32 for the
    default LM on an AVX-512 Xeon without them, against ~1.7x faster on one with them.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def auto_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA GPUs that support it, else fp32 (on every CPU).

    Not bf16 on CPUs, even those that run it natively (~1.7x faster there): bf16 activations
    move FAC by up to ~0.01 and depend on which texts share a batch, so the same data would
    score differently on two laptops. A measurement should print the same number on every
    CPU; ``dtype="bfloat16"`` takes the speed where :func:`cpu_has_bf16` says it is native.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.float32


_PREFIX_MODELS = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gpt2"})
"""Architectures whose forward is known to take a prefix's ``DynamicCache`` and give the same
residuals (tests/test_sae_naming.py); others run every token."""


class LayerReader:
    """An LM cut at one layer, with the tokenisation rule that says which tokens count.

    ``hook`` is a transformers module path (its output is read) or a TransformerLens name
    (``blocks.L.hook_resid_pre``, ...: see :mod:`fac_metric.space.hooks`); ``center`` removes
    the stream's mean as TransformerLens' ``center_writing_weights`` does (LayerNorm models).
    """

    def __init__(self, model, tokenizer, hook: str, rule: TextRule, *, center: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.hook = hook
        self.rule = rule
        model_type = getattr(model.config, "model_type", "")
        self.site: HookSite = resolve_hook(model_type, hook, center=center)
        try:
            self.module = model.get_submodule(self.site.module)
        except AttributeError as err:
            n_layers = getattr(model.config, "num_hidden_layers", None)
            raise FacModelError(
                f"hook {hook!r} names no module of {type(model).__name__}"
                + (f" (it has layers 0..{n_layers - 1}: use '{hook_for_layer(0, model_type)[:-1]}N' or "
                   "'blocks.N.hook_resid_post')" if n_layers else "")
            ) from err
        self.d_model = int(model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def tokenize_all(self, items: Sequence[TextItem]) -> list[Tokenized]:
        """Tokenise every item and warn once if any was longer than the context."""
        out = [tokenize(self.tokenizer, item, self.rule) for item in items]
        n_cut = sum(t.truncated for t in out)
        if n_cut:
            warnings.warn(
                f"{n_cut} of {len(out)} texts exceed max_length={self.rule.max_length} tokens and were truncated",
                stacklevel=3,
            )
        return out

    def batches(self, tokenized: Sequence[Tokenized], batch_size: int) -> Iterator[list[int]]:
        """Indices of texts, longest first, in batches of similar length (little padding)."""
        if batch_size < 1:
            raise FacInputError(f"batch_size={batch_size} must be at least 1")
        order = sorted(range(len(tokenized)), key=lambda i: (-len(tokenized[i].input_ids), i))
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def pad(self, tokenized: Sequence[Tokenized], ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ``(input_ids, attention_mask, counted)`` tensors of texts ``ids``."""
        width = max(len(tokenized[i].input_ids) for i in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        counted = torch.zeros((len(ids), width), dtype=torch.bool)
        for row, i in enumerate(ids):
            t = tokenized[i]
            n = len(t.input_ids)
            input_ids[row, :n] = torch.tensor(t.input_ids)
            attention[row, :n] = 1
            counted[row, :n] = torch.tensor(t.counted)
        return input_ids, attention, counted

    @torch.inference_mode()
    def read(self, tokenized: Sequence[Tokenized], ids: list[int]) -> ResidualBatch:
        """Run texts ``ids`` up to the hooked layer; return the counted tokens' residuals.

        The scaffolding every text of the batch starts with (a chat template's system prompt and
        role markers) runs once and is reused from its key/value cache: see :meth:`shared_prefix`.
        """
        input_ids, attention, counted = self.pad(tokenized, ids)
        prefix = self.shared_prefix(tokenized, ids)
        if prefix:
            cache = self._prefix_cache(input_ids[0, :prefix], len(ids))
            hidden = self.forward_to_layer(input_ids[:, prefix:].to(self.device), attention.to(self.device), cache)
            counted = counted[:, prefix:]
        else:
            hidden = self.forward_to_layer(input_ids.to(self.device), attention.to(self.device))
        counted = counted.to(hidden.device)
        return ResidualBatch(
            text_ids=list(ids),
            residuals=hidden[counted],
            lengths=counted.sum(dim=1).tolist(),
            n_tokens=int(attention.sum()),
        )

    # ------------------------------------------------------------ the shared prefix
    reuse_prefix: bool = True
    """Run the scaffolding texts share once per batch shape (False: every token of every text)."""
    MIN_PREFIX = 8
    """Shorter shared scaffolding is run with each text (a cache costs more than it saves)."""

    def shared_prefix(self, tokenized: Sequence[Tokenized], ids: list[int]) -> int:
        """Leading tokens the texts ``ids`` share that no text counts: 0 unless there are at least
        :data:`MIN_PREFIX`, the model's cache can hold them, and every text has a token after them.

        Only uncounted tokens (scaffolding) are shared, so the prefix is the template's, the same
        for every batch of plain strings, whatever words the texts happen to start with.
        """
        if not self.reuse_prefix or not self._caches_prefix():
            return 0
        first = tokenized[ids[0]].input_ids
        n = min(len(tokenized[i].input_ids) for i in ids) - 1
        for i in ids:
            t = tokenized[i]
            k = 0
            while k < n and t.input_ids[k] == first[k] and not t.counted[k]:
                k += 1
            n = k
            if n < self.MIN_PREFIX:
                return 0
        return n

    def _caches_prefix(self) -> bool:
        """Whether this model's forward takes a plain key/value cache we can fill with a prefix."""
        if getattr(self, "_prefix_ok", None) is None:
            cfg = self.model.config
            window = getattr(cfg, "sliding_window", None)
            sliding = bool(getattr(cfg, "use_sliding_window", window is not None)) and window is not None
            kinds = set(getattr(cfg, "layer_types", None) or ["full_attention"])
            self._prefix_ok = (getattr(cfg, "model_type", "") in _PREFIX_MODELS and not sliding
                               and kinds <= {"full_attention"})
        return self._prefix_ok

    def _cache_kwarg(self) -> str:
        """``cache`` in transformers >= 5.2x (``past_key_values`` is deprecated there), else the old
        name; looked up once, not on every batch."""
        if getattr(self, "_cache_name", None) is None:
            import inspect

            params = inspect.signature(self.model.forward).parameters
            self._cache_name = "cache" if "cache" in params else "past_key_values"
        return self._cache_name

    def _prefix_cache(self, prefix_ids: torch.Tensor, batch: int):
        """A fresh cache holding ``prefix_ids``' keys and values for ``batch`` texts (computed once
        per prefix, then expanded: each forward appends to its own copy)."""
        from transformers import DynamicCache

        key = tuple(prefix_ids.tolist())
        if getattr(self, "_prefix_kv", (None,))[0] != key:
            cache = DynamicCache()
            ids = prefix_ids[None].to(self.device)
            self.forward_to_layer(ids, torch.ones_like(ids), cache)
            layers = [(layer.keys, layer.values) for layer in cache.layers
                      if getattr(layer, "keys", None) is not None and layer.keys.numel()]
            self._prefix_kv = (key, layers)
        layers = self._prefix_kv[1]
        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                            for k, v in layers])

    def forward_to_layer(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache=None) -> torch.Tensor:
        """``[batch, seq, d_model]`` output of the hooked module; later layers never run.

        ``cache``: keys and values of tokens before ``input_ids`` (``attention_mask`` covers both)."""
        captured: list[torch.Tensor] = []

        def stop(_module, _inputs, output):
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _StopForward

        def stop_before(_module, args, kwargs):  # the module's input: it never runs
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _StopForward

        if self.site.side == "input":
            handle = self.module.register_forward_pre_hook(stop_before, with_kwargs=True)
        else:
            handle = self.module.register_forward_hook(stop)
        try:
            self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=cache is not None,
                       **({} if cache is None else {self._cache_kwarg(): cache}))
        except _StopForward:
            pass
        finally:
            handle.remove()
        if not captured:
            raise FacModelError(f"hook {self.hook!r} never ran during the forward pass")
        if self.site.center:
            return captured[0] - captured[0].mean(dim=-1, keepdim=True)
        return captured[0]
