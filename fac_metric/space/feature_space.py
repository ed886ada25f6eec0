"""``FeatureSpace`` = a causal LM cut at one layer + an SAE + the tokenisation/pooling rule.

Owns: ``encode(texts) -> SparseActivations`` (batched, streamed in chunks, progress bar, CUDA
when present) and ``profile(texts)``, the loop that streams texts through the model into a
:class:`~fac_metric.measure.profile.FeatureProfile`; per-latent activation scales and δ
(``threshold_at`` resolves and validates δ into a ``Threshold``); the background profile; the
fingerprint that activations, profiles and caches carry; the lifecycle: where a space came from
(``source``), one loaded copy per source and process (``get_feature_space``), the folder on
disk (``feature_space.json`` as a typed ``SpaceConfig`` + sae-lens files +
``feature_stats.safetensors`` + ``features.jsonl``), and calibration as a new space
(``with_calibration``). Must not: compute FAC or choose relevant features (``measure``), or hold
anything dense of size texts x SAE width.

>>> space = get_feature_space()                       # the embedded default, offline, loaded once
>>> acts = space.encode(["Write a haiku about rain.", "List three prime numbers."], show_progress=False)
>>> acts.n_texts, acts.d_sae == space.d_sae, bool((acts.values > 0).all()), acts.fingerprint == space.fingerprint
(2, True, True, True)
>>> space.source.spec is None and get_feature_space(space.source) is space
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, NamedTuple, Sequence

import numpy as np
import torch
from safetensors.numpy import load_file as load_np, save_file as save_np
from tqdm.auto import tqdm

from fac_metric.errors import FacInputError, FacModelError
from fac_metric.measure.activations import SparseActivations
from fac_metric.measure.profile import FeatureProfile
from fac_metric.measure.threshold import Threshold, with_dtype
from fac_metric.space.hooks import centers_writes, is_transformer_lens_hook, layers_path, resolve_hook
from fac_metric.space.layer_reader import LayerReader, auto_dtype, hook_for_layer, layer_of_hook
from fac_metric.space.models import DEFAULT_LM, load_lm, offline
from fac_metric.space.sae_io import load_sae
from fac_metric.space.tokenization import TextItem, TextRule, check_collection, check_item

SPACE_FILE = "feature_space.json"
STATS_FILE = "feature_stats.safetensors"
FACTS_FILE = "features.jsonl"
FORMAT_VERSION = 1

Pooling = Literal["max", "max_preact"]
POOLINGS = ("max", "max_preact")

DEFAULT_THRESHOLD = 1.5
"""Default δ, relative to each latent's scale: a feature is active on a text when its pooled
activation exceeds 1.5 x its median activation on held-out text (chosen so that FAC separates
same-task from unrelated data and a few texts cannot saturate it: docs/calibration.md)."""

_TOKENS_PER_SAE_CALL = 4096  # bounds the dense [tokens, d_sae] block the SAE produces per call
_TEXTS_PER_CHUNK = 1024  # texts tokenised at once: memory stays flat however many texts come


@dataclass(frozen=True)
class SpaceSource:
    """Where a loaded space came from: the arguments that load it again (in another process too)."""

    spec: str | None
    """The folder (resolved), the Hub repo id, or None for the embedded default."""
    device: str
    dtype: str
    """The dtype the LM runs in (``float32``, ``bfloat16``, ...), never ``auto``."""
    model: str | None = None
    revision: str | None = None
    threshold: float | None = None
    text_format: str | None = None


@dataclass(frozen=True)
class SpaceConfig:
    """``feature_space.json``: what :meth:`FeatureSpace.save` writes and :meth:`FeatureSpace.load` reads."""

    model: str
    hook: str
    text_format: Literal["chat", "raw"]
    max_length: int
    pooling: str = "max"
    threshold: float = DEFAULT_THRESHOLD
    """The default δ."""
    threshold_rule: str = "absolute"
    lm_fingerprint: str | None = None
    fingerprint: str | None = None
    model_revision: str | None = None
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, folder: Path) -> "SpaceConfig":
        from fac_metric.saved import read_json

        meta = read_json(folder / SPACE_FILE, "a feature-space config", error=FacModelError)
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise FacModelError(f"{folder} was written by a newer fac (format {meta['format_version']}): upgrade fac")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = sorted({"model", "hook", "text_format", "max_length"} - set(meta))
        if missing:
            raise FacModelError(f"{folder / SPACE_FILE} lacks {missing}: it is not a feature-space config")
        return cls(**{k: v for k, v in meta.items() if k in known})

    def write(self, folder: Path) -> None:
        (folder / SPACE_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


class PeakChunk(NamedTuple):
    """One chunk of :meth:`FeatureSpace.iter_peaks`: activations, peak positions, counted tokens."""

    acts: SparseActivations
    peaks: np.ndarray
    """``int32 [nnz]``, aligned with ``acts.indices``: counted-token position of each maximum."""
    tokens: list[list[int]]
    """Per text, its counted token ids (positions in ``peaks`` index into these)."""
    positions: np.ndarray | None = None
    """With ``shard=``: each text's position in its chunk (None: every text of the chunk, in order)."""
    chunk_texts: int | None = None
    """With ``shard=``: how many texts the whole chunk held (this process encoded ``positions``)."""


class FeatureSpace:
    """Encode texts into sparse SAE feature activations (see the module docstring)."""

    def __init__(
        self,
        reader: LayerReader,
        sae,
        *,
        model_name: str,
        pooling: Pooling = "max",
        threshold: float = DEFAULT_THRESHOLD,
        scales: np.ndarray | None = None,
        background: SparseActivations | None = None,
        facts: list[dict] | None = None,
    ):
        if pooling not in POOLINGS:
            raise FacInputError(f"pooling={pooling!r} is not one of {POOLINGS}")
        d_in = int(sae.cfg.d_in)
        if d_in != reader.d_model:
            raise FacModelError(
                f"the SAE reads vectors of width {d_in} but {model_name!r} has hidden size {reader.d_model}: "
                "pair the SAE with the model (and layer) it was trained on"
            )
        self.reader = reader
        self.sae = sae
        self.model_name = model_name
        self.pooling = pooling
        self.default_delta = float(threshold)
        """The δ this space uses unless told otherwise (``feature_space.json``'s ``threshold``)."""
        d_sae = int(sae.cfg.d_sae)
        if scales is not None and len(scales) != d_sae:
            raise FacModelError(f"{len(scales)} latent scales for an SAE of width {d_sae}")
        # Without calibration, δ is absolute (scale 1 for every latent).
        self.scales = np.ones(d_sae, np.float32) if scales is None else np.asarray(scales, np.float32)
        self.calibrated = scales is not None
        self.background = background
        self._facts: list[dict] = facts or []
        self._facts_file: Path | None = None  # read on first use: ~20 MB of spans most scoring never needs
        self.token_counts: np.ndarray | None = None
        """Counted-token frequencies of the corpus the top spans came from (LLM-free labels use them)."""
        self._fingerprint: str | None = None
        self.source: SpaceSource | None = None
        """Where this space was loaded from (None when built from components)."""
        self._backgrounds: dict[float, FeatureProfile] = {}
        self.model_revision: str | None = None
        """The Hub commit the LM was loaded at, where it came from the Hub (``feature_space.json`` keeps it)."""
        Threshold.relative(self.default_delta, self.scales, "")  # a bad default δ fails at construction

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_components(
        cls,
        model: str | os.PathLike | None = None,
        sae: Any = None,
        *,
        layer: int | None = None,
        hook: str | None = None,
        text_format: Literal["chat", "raw"] = "chat",
        max_length: int = 512,
        pooling: Pooling = "max",
        threshold: float = DEFAULT_THRESHOLD,
        scales: np.ndarray | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
    ) -> "FeatureSpace":
        """Build a feature space from an LM (path, Hub id or default) and an SAE (see ``load_sae``).

        ``hook`` names where the SAE reads; without it, the SAE's own ``metadata.hook_name``
        is used, and ``layer=N`` (the output of decoder layer N, TransformerLens'
        ``blocks.N.hook_resid_post``) serves SAEs that record no hook. A ``layer`` that
        disagrees with the SAE's recorded hook is refused (pass ``hook=`` to override it).
        """
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch_dtype = auto_dtype(device) if dtype == "auto" else (getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        lm, tokenizer = load_lm(model, revision=revision, token=token, dtype=torch_dtype, device=device)
        sae_obj = sae if isinstance(sae, torch.nn.Module) else load_sae(sae, device=device)
        # SAEs are often stored in fp16 (the default one is): on a CPU fp16 matmuls are emulated
        # and ~50x slower, and the SAE is a small share of the work anyway, so it runs in fp32.
        sae_obj.to(device=device, dtype=torch.float32)
        meta = getattr(sae_obj.cfg, "metadata", None)
        if hook is None:
            meta_hook = getattr(meta, "hook_name", None) if meta is not None else None
            hook = meta_hook if layer is None else _layer_hook(layer, meta_hook, getattr(lm.config, "model_type", "llama"))
        if hook is None:
            raise FacInputError("say where the SAE reads: pass layer=N, or hook='blocks.N.hook_resid_post' "
                                "(TransformerLens' name, as sae-lens records it) or a module path such as 'model.layers.N'")
        if meta is not None and getattr(meta, "hook_head_index", None) is not None:
            raise FacModelError(f"the SAE reads one attention head ({hook!r}, head {meta.hook_head_index}): "
                                "fac encodes residual-stream and sublayer-output SAEs only")
        n_layers = getattr(lm.config, "num_hidden_layers", None)
        at = layer_of_hook(hook)
        if at is not None and n_layers is not None and not 0 <= at < n_layers:
            raise FacModelError(f"layer {at} is out of range: {model or DEFAULT_LM} has layers 0..{n_layers - 1}")
        # sae-lens reads a TransformerLens model loaded with the SAE's own kwargs: centring is the
        # one of them that changes the residual stream (see fac_metric.space.hooks).
        reader = LayerReader(lm, tokenizer, hook, TextRule(text_format, max_length),
                             center=is_transformer_lens_hook(hook) and centers_writes(sae_obj))
        name = str(model) if model is not None else DEFAULT_LM
        space = cls(reader, sae_obj, model_name=name, pooling=pooling, threshold=threshold, scales=scales)
        # The commit a Hub LM was read at (transformers records it), so the saved space names it.
        hub_id = model is not None and not Path(os.fspath(model)).exists()
        space.model_revision = revision or (getattr(lm.config, "_commit_hash", None) if hub_id else None)
        return space

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        *,
        model: str | os.PathLike | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
        threshold: float | None = None,
        text_format: Literal["chat", "raw"] | None = None,
    ) -> "FeatureSpace":
        """Load a feature-space folder (local path or Hub repo id); ``None`` = the embedded default.

        ``model`` overrides the LM the folder names (e.g. a local copy of the same weights);
        the fingerprint check still refuses weights that differ from the ones calibrated.
        ``text_format="raw"`` encodes plain strings as documents instead of user turns (this
        changes the fingerprint: profiles made one way are refused the other way).
        """
        folder = resolve_space_folder(path, revision=revision, token=token)
        cfg = SpaceConfig.read(folder)
        stats = _read_stats(folder / STATS_FILE) if (folder / STATS_FILE).is_file() else {}
        background = SparseActivations.from_arrays({k[3:]: v for k, v in stats.items() if k.startswith("bg_")}) if "bg_indptr" in stats else None
        space = cls.from_components(
            model if model is not None else _model_of(cfg, folder),
            folder,
            hook=cfg.hook,
            text_format=text_format or cfg.text_format,
            max_length=cfg.max_length,
            pooling=cfg.pooling,  # type: ignore[arg-type]
            threshold=threshold if threshold is not None else cfg.threshold,
            scales=stats.get("scale"),
            revision=cfg.model_revision if model is None else None,
            token=token,
            device=device,
            dtype=dtype,
        )
        space.background = background._replace(fingerprint=space.fingerprint) if background is not None else None
        space.token_counts = stats.get("token_counts")
        if (folder / FACTS_FILE).is_file():
            space._facts_file = folder / FACTS_FILE
        expected = cfg.lm_fingerprint
        if expected and expected != space.lm_fingerprint():
            raise FacModelError(
                f"the LM loaded for {folder} has other weights than the one it was calibrated with "
                f"(fingerprint {space.lm_fingerprint()} != {expected}): load the model the feature space names ({cfg.model!r})"
            )
        spec = None if path is None else (str(folder.resolve()) if Path(os.fspath(path)).is_dir() else str(path))
        space.source = SpaceSource(spec, str(space.sae.W_enc.device), space.dtype, None if model is None else str(model),
                                   revision, threshold, text_format)
        return space

    def save(self, path: str | os.PathLike) -> Path:
        """Write the feature-space folder (SAE, rule, scales, background, facts)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.sae.save_model(str(path))
        self.config().write(path)
        self.save_facts(path)
        return path

    def push_to_hub(self, repo_id: str, *, with_lm: bool = False, private: bool = False, token: str | None = None,
                    revision: str | None = None, license: str | None = None, dry_run: bool = False,
                    out: str | os.PathLike | None = None) -> str:
        """Publish this space as a Hub model repo (SAE, config, facts, background, model card with
        sae-lens metadata; the LM's weights too with ``with_lm``): see
        :func:`fac_metric.space.publishing.build_feature_space_repo`. ``dry_run`` builds the folder
        (``out``, default a temporary one) and returns what would be uploaded, uploading nothing;
        otherwise returns the commit URL. ``FeatureSpace.load(repo_id, revision=...)`` loads it back.
        """
        import tempfile

        from fac_metric.publish import check_can_upload, check_repo_id, describe_plan, upload
        from fac_metric.space.publishing import build_feature_space_repo

        check_repo_id(repo_id) if dry_run else check_can_upload(repo_id)
        folder = build_feature_space_repo(self, out or tempfile.mkdtemp(prefix="fac-push-"), with_lm=with_lm,
                                          license=license)
        if dry_run:
            return describe_plan(folder, repo_id, "model")
        return upload(folder, repo_id, "model", token=token, private=private, revision=revision,
                      commit_message=f"Upload feature space {self.fingerprint}")

    def config(self) -> SpaceConfig:
        """The typed ``feature_space.json`` of this space (what :meth:`save` writes)."""
        rule = "relative: active when activation > threshold * scale[latent]" if self.calibrated else "absolute"
        return SpaceConfig(self.model_name, self.reader.hook, self.reader.rule.format, self.reader.rule.max_length,
                           self.pooling, self.default_delta, rule, self.lm_fingerprint(), self.fingerprint,
                           self.model_revision)

    def with_calibration(self, scales: np.ndarray, background: SparseActivations | None = None,
                         facts: list[dict] | None = None) -> "FeatureSpace":
        """A new space on the same LM and SAE with these per-latent ``scales`` (and background
        activations, facts); this one is left as it is. Its fingerprint differs (scales are part of it)."""
        new = FeatureSpace(self.reader, self.sae, model_name=self.model_name, pooling=self.pooling,
                           threshold=self.default_delta, scales=scales, facts=facts)
        new.token_counts = self.token_counts
        new.model_revision = self.model_revision
        if background is not None:
            new.background = background._replace(fingerprint=new.fingerprint)
        return new

    @property
    def facts(self) -> list[dict]:
        """Per-latent facts (``features.jsonl``): scale, background share, top spans, summary, ..."""
        if self._facts_file is not None:
            from fac_metric.saved import read_jsonl

            self._facts = read_jsonl(self._facts_file, "per-feature facts of a feature space", error=FacModelError)
            self._facts_file = None
        return self._facts

    @facts.setter
    def facts(self, value: list[dict]) -> None:
        self._facts, self._facts_file = list(value), None

    def save_facts(self, path: str | os.PathLike) -> Path:
        """Write only what describes the latents (stats and ``features.jsonl``), not the SAE.

        What adding spans or labels to an existing folder needs: the weights stay as stored.
        """
        path = Path(path)
        arrays = {"scale": self.scales} if self.calibrated else {}
        if self.token_counts is not None:
            arrays["token_counts"] = np.asarray(self.token_counts, np.int64)
        if self.background is not None:
            arrays.update({f"bg_{k}": v for k, v in self.background.to_arrays().items()})
        if arrays:
            save_np(arrays, str(path / STATS_FILE))
        if self.facts:
            # Written whole to a temporary file, then renamed: a killed run never leaves half a file.
            tmp = path / f".{FACTS_FILE}.tmp"
            tmp.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in self.facts), encoding="utf-8")
            os.replace(tmp, path / FACTS_FILE)
        return path

    def fact(self, feature: int) -> dict:
        """What ``features.jsonl`` says of one feature (``{}`` if nothing): scale, spans, summary, ..."""
        if not 0 <= int(feature) < self.d_sae:
            raise FacInputError(f"feature {feature} is out of range: this space has features 0..{self.d_sae - 1}")
        if len(self.facts) == self.d_sae and self.facts[int(feature)].get("id") == int(feature):
            return self.facts[int(feature)]
        return next((f for f in self.facts if f.get("id") == int(feature)), {})

    # ----------------------------------------------------------------- identity
    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    def lm_fingerprint(self) -> str:
        """Hash of the LM weights that reach the hooked layer.

        Weights are hashed after rounding to bf16, so the same model loaded in fp32 or bf16 has
        one fingerprint (bf16 keeps 8 mantissa bits: any real change of model still shows).
        """
        if getattr(self, "_lm_fp", None) is None:
            h = hashlib.blake2b(digest_size=12)
            at = self.reader.site.layer
            container = layers_path(getattr(self.reader.model.config, "model_type", "")) + "."
            for name, p in self.reader.model.named_parameters():
                if at is not None and name.startswith(container):
                    idx = name[len(container):].split(".", 1)[0]
                    if idx.isdigit() and int(idx) > at:
                        continue
                if "lm_head" in name or name.startswith(("model.norm", "transformer.ln_f")):
                    continue
                h.update(name.encode())
                h.update(p.detach().to(torch.bfloat16).float().cpu().contiguous().numpy().tobytes())
            self._lm_fp = h.hexdigest()
        return self._lm_fp

    @property
    def fingerprint(self) -> str:
        """Identity of what ``encode`` computes: LM and SAE weights, hook, text rule, pooling, scales,
        and the compute dtype where it is not float32 (``<hash>-bfloat16``: see ``with_dtype``).

        δ is not part of it: profiles record the δ they counted at separately.
        """
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=12)
            for tensor in (self.sae.W_enc, self.sae.b_enc, self.sae.W_dec, self.sae.b_dec):
                h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            rule = self.reader.rule
            h.update(json.dumps([self.lm_fingerprint(), self.reader.hook, rule.format, rule.max_length, self.pooling,
                                 int(self.sae.cfg.k) if hasattr(self.sae.cfg, "k") else None]).encode())
            if self.reader.site.center:  # a centred stream is another encoding (only named where it applies)
                h.update(b"centered")
            h.update(self.scales.tobytes())
            h.update((self.reader.tokenizer.chat_template or "").encode())
            self._fingerprint = with_dtype(h.hexdigest(), self.dtype)
        return self._fingerprint

    @property
    def dtype(self) -> str:
        """The dtype the LM runs in (``float32``, ``bfloat16``, ...)."""
        return str(self.reader.model.dtype).removeprefix("torch.")

    @property
    def threshold(self) -> Threshold:
        """The space's default δ, as a :class:`Threshold`."""
        return self.threshold_at(None)

    def threshold_at(self, threshold: "float | Threshold | None" = None) -> Threshold:
        """δ resolved once: None (this space's default), a number (relative to each latent's
        scale) or a ``Threshold`` (checked to be this space's), validated, with its per-latent
        activations (δ x scale)."""
        if isinstance(threshold, Threshold):
            threshold.check(self.fingerprint, "the threshold")
            return threshold
        return Threshold.relative(self.default_delta if threshold is None else threshold, self.scales, self.fingerprint)

    def background_profile(self, threshold: "float | Threshold | None" = None) -> FeatureProfile | None:
        """The shipped background corpus' profile at ``threshold`` (None if the space has none)."""
        if self.background is None:
            return None
        thr = self.threshold_at(threshold)
        key = thr.delta
        if key not in self._backgrounds or self._backgrounds[key].threshold != thr:
            self._backgrounds[key] = FeatureProfile.from_activations(self.background, thr)
        return self._backgrounds[key]

    def profile(self, texts: Iterable[TextItem], threshold: "float | Threshold | None" = None, *,
                spans: Any = None, batch_size: int = 32, show_progress: bool = True,
                desc: str = "Profiling", on_chunk: Callable[[SparseActivations], None] | None = None,
                shard: tuple[int, int] | None = None) -> FeatureProfile:
        """The profile of ``texts`` at ``threshold``, streamed chunk by chunk (memory stays flat).

        ``spans``: a :class:`~fac_metric.meaning.spans.TopSpans` to fill in the same pass (each
        feature's top spans over these texts); ``on_chunk``: called with each chunk's
        activations as they are made (to keep them, or fold them into a match). Same profile as
        ``FeatureProfile.from_activations(self.encode(texts), self.threshold_at(threshold))``.
        ``shard=(rank, world)``: only this process' batches (see :meth:`iter_encode`); the
        processes' profiles merge (``FeatureProfile.merge``) into exactly this profile.
        """
        thr = self.threshold_at(threshold)
        if shard is not None and spans is not None:
            raise FacInputError("top spans are collected in one process: profile with spans or with shard=, not both")
        if spans is None:
            chunks = self.iter_encode(texts, batch_size=batch_size, show_progress=show_progress, desc=desc, shard=shard)
        else:
            from fac_metric.meaning.spans import SPAN_CHUNK

            def chunks_and_spans():
                for chunk in self.iter_peaks(texts, batch_size=batch_size, chunk_size=SPAN_CHUNK,
                                             show_progress=show_progress, desc=desc):
                    spans.update(chunk)
                    yield chunk.acts
            chunks = chunks_and_spans()
        if on_chunk is not None:
            chunks = _tapped(chunks, on_chunk)
        prof = FeatureProfile.from_activations(chunks, thr)
        if prof.n_texts == 0 and shard is None:  # a shard may be empty: fewer batches than processes
            raise FacInputError("no texts to profile: pass at least one string or chat")
        return prof

    # ----------------------------------------------------------------- encoding
    def encode(
        self,
        texts: Iterable[TextItem],
        *,
        batch_size: int = 32,
        show_progress: bool = True,
        desc: str = "Encoding",
    ) -> SparseActivations:
        """Sparse per-text activations of ``texts`` (strings or chats), in input order."""
        parts = list(self.iter_encode(texts, batch_size=batch_size, show_progress=show_progress, desc=desc))
        if not parts:
            raise FacInputError("no texts to encode: pass at least one string or chat")
        return SparseActivations.concat(parts)

    def iter_encode(
        self,
        texts: Iterable[TextItem],
        *,
        batch_size: int = 32,
        chunk_size: int = _TEXTS_PER_CHUNK,
        show_progress: bool = True,
        desc: str = "Encoding",
        shard: tuple[int, int] | None = None,
    ) -> Iterator[SparseActivations]:
        """Encode in chunks of ``chunk_size`` texts, yielding each chunk's activations in order.

        Only one chunk's tokens and activations are alive at a time, so a profile streamed from
        this keeps memory flat however long ``texts`` is. ``shard=(rank, world)``: encode only
        every ``world``-th batch from ``rank`` (the batches one process would run, in the same
        composition), yielding those texts' activations: ``world`` processes together encode
        every text once, each value as one process computes it.
        """
        if shard is not None:
            rank, world = shard
            if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
                raise FacInputError(f"shard={shard!r} must be (rank, world) with 0 <= rank < world")
        return self._iter_chunks(texts, batch_size, chunk_size, show_progress, desc, peaks=False, shard=shard)

    def iter_peaks(
        self,
        texts: Iterable[TextItem],
        *,
        batch_size: int = 32,
        chunk_size: int = _TEXTS_PER_CHUNK,
        show_progress: bool = True,
        desc: str = "Reading peaks",
        shard: tuple[int, int] | None = None,
    ) -> Iterator["PeakChunk"]:
        """Like :meth:`iter_encode`, plus where each activation peaks and the texts' counted tokens.

        What top-span collection needs: for every (text, latent) entry, the counted-token
        position of the max, and each text's counted token ids to cut the span from.
        ``shard=(rank, world)``: this process' batches, as :meth:`iter_encode`.
        """
        return self._iter_chunks(texts, batch_size, chunk_size, show_progress, desc, peaks=True, shard=shard)

    def _iter_chunks(self, texts, batch_size: int, chunk_size: int, show_progress: bool, desc: str, *, peaks: bool,
                     shard: tuple[int, int] | None = None):
        check_collection(texts)  # before the first next(): a bad argument fails at the call
        return self._chunks(texts, batch_size, chunk_size, show_progress, desc, peaks, shard)

    def _chunks(self, texts, batch_size, chunk_size, show_progress, desc, peaks, shard=None):
        total = len(texts) if hasattr(texts, "__len__") and shard is None else None
        bar = tqdm(total=total, desc=desc, disable=not show_progress, unit="text")
        chunk: list[TextItem] = []
        batches = [0]  # batches planned so far, over all chunks: the round-robin of a shard runs on
        for index, item in enumerate(texts):
            chunk.append(check_item(item, index))
            if len(chunk) == chunk_size:
                yield self._encode_chunk(chunk, batch_size, bar, peaks, shard, batches)
                chunk = []
        if chunk:
            yield self._encode_chunk(chunk, batch_size, bar, peaks, shard, batches)
        bar.close()

    @torch.inference_mode()
    def _encode_chunk(self, items: Sequence[TextItem], batch_size: int, bar, peaks: bool = False,
                      shard: tuple[int, int] | None = None, batches: list[int] | None = None):
        tokenized = self.reader.tokenize_all(items)
        rows: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(items)
        where: list[np.ndarray | None] = [None] * len(items)
        n_tokens = np.zeros(len(items), np.int32)
        for ids in self.reader.batches(tokenized, batch_size):
            if batches is not None:
                batches[0] += 1
                if shard is not None and (batches[0] - 1) % shard[1] != shard[0]:
                    continue  # another process' batch
            batch = self.reader.read(tokenized, ids)
            pooled, argmax = self._pool(batch.residuals, batch.lengths)
            nz_rows, nz_cols = pooled.nonzero(as_tuple=True)
            vals = pooled[nz_rows, nz_cols].float().cpu().numpy()
            cols = nz_cols.to(torch.int32).cpu().numpy()
            pos = argmax[nz_rows, nz_cols].to(torch.int32).cpu().numpy() if peaks else None
            bounds = np.searchsorted(nz_rows.cpu().numpy(), np.arange(len(ids) + 1))
            for row, text_id in enumerate(batch.text_ids):
                rows[text_id] = (cols[bounds[row] : bounds[row + 1]], vals[bounds[row] : bounds[row + 1]])
                if pos is not None:
                    where[text_id] = pos[bounds[row] : bounds[row + 1]]
                n_tokens[text_id] = batch.lengths[row]
            bar.update(len(ids))
        mine = list(range(len(items)))
        if shard is not None:  # this process' texts only, in chunk order
            mine = [i for i, row in enumerate(rows) if row is not None]
            rows, n_tokens, where = [rows[i] for i in mine], n_tokens[mine], [where[i] for i in mine]
        acts = SparseActivations.from_rows(rows, n_tokens, self.d_sae, self.fingerprint)  # type: ignore[arg-type]
        if not peaks:
            return acts
        counted = [[t for t, c in zip(tokenized[i].input_ids, tokenized[i].counted) if c] for i in mine]
        located = (np.asarray(mine, np.int64), len(items)) if shard is not None else (None, None)
        return PeakChunk(acts, np.concatenate(where).astype(np.int32) if where else np.zeros(0, np.int32), counted,
                         *located)

    def _pool(self, residuals: torch.Tensor, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[n_texts, d_sae]`` max over each text's tokens of the SAE activation, and its argmax.

        Texts go through the SAE in groups of about ``_TOKENS_PER_SAE_CALL`` tokens, whole texts
        only, which bounds the dense ``[tokens, d_sae]`` block the SAE returns.
        """
        out = torch.zeros((len(lengths), self.d_sae), device=residuals.device)
        argmax = torch.zeros((len(lengths), self.d_sae), dtype=torch.int32, device=residuals.device)
        starts = [0]
        for n in lengths:
            starts.append(starts[-1] + n)
        first = 0
        while first < len(lengths):
            last = first + 1
            while last < len(lengths) and starts[last + 1] - starts[first] <= _TOKENS_PER_SAE_CALL:
                last += 1
            z = self._activations(residuals[starts[first] : starts[last]].to(self.sae.W_enc.dtype))
            for t in range(first, last):
                if lengths[t]:
                    out[t], argmax[t] = z[starts[t] - starts[first] : starts[t + 1] - starts[first]].max(dim=0)
            first = last
        return out, argmax

    def _activations(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooling == "max":
            return self.sae.encode(x)
        # The paper's variant: ReLU of the pre-activation with the TopK mask off.
        return torch.relu(self.sae.process_sae_in(x) @ self.sae.W_enc + self.sae.b_enc)

    def __repr__(self) -> str:
        return (f"FeatureSpace(model={self.model_name!r}, hook={self.reader.hook!r}, d_sae={self.d_sae}, "
                f"format={self.reader.rule.format!r}, pooling={self.pooling!r}, threshold={self.default_delta})")


_LOADED: dict[Any, FeatureSpace] = {}


def _layer_hook(layer: int, sae_hook: str | None, model_type: str) -> str:
    """The hook ``layer=N`` means: the SAE's recorded one where it reads that layer's output
    (its name keeps sae-lens' preprocessing, e.g. centring), ``model.layers.N`` where it records none.

    >>> _layer_hook(3, "blocks.3.hook_resid_post", "llama")
    'blocks.3.hook_resid_post'
    >>> _layer_hook(3, None, "gpt2")
    'transformer.h.3'
    """
    own = hook_for_layer(layer, model_type)
    if sae_hook is None:
        return own
    ours, theirs = resolve_hook(model_type, own), resolve_hook(model_type, sae_hook)
    if (ours.module, ours.side) != (theirs.module, theirs.side):
        raise FacInputError(f"layer={layer} (the output of decoder layer {layer}) is not where the SAE reads: it "
                            f"records hook_name={sae_hook!r}; drop layer= to use the SAE's hook, or pass hook= "
                            "to read another tensor on purpose")
    return sae_hook


def _tapped(chunks: Iterable[SparseActivations], on_chunk: Callable[[SparseActivations], None]):
    for chunk in chunks:
        on_chunk(chunk)
        yield chunk


def _read_stats(path: Path) -> dict[str, np.ndarray]:
    """``feature_stats.safetensors``, checked: scales finite and positive (δ x scale must mean
    something), the background's arrays consistent with each other."""
    from fac_metric.saved import check_array, read_arrays

    stats = read_arrays(path, "feature-space stats", error=FacModelError)
    if "scale" in stats:
        check_array(path, "scale", stats["scale"], above=0, error=FacModelError)
    if "bg_indptr" in stats:
        try:
            SparseActivations.from_arrays({k[3:]: v for k, v in stats.items() if k.startswith("bg_")}).check()
        except (KeyError, ValueError) as err:
            raise FacModelError(f"{path}: the background activations are damaged ({err})") from err
        check_array(path, "bg_values", stats["bg_values"], error=FacModelError)
    return stats


def get_feature_space(spec: Any = None, *, device: str | None = None, dtype: str = "auto") -> FeatureSpace:
    """A loaded ``FeatureSpace``, once per source and process: a folder, Hub id, ``None`` (the
    embedded default), a :class:`SpaceSource` (``space.source``: load it again), or an instance
    (returned as it is). The LM and SAE then load once per process, not once per call."""
    if isinstance(spec, FeatureSpace):
        return spec
    if isinstance(spec, SpaceSource):
        key: Any = spec
        load = dict(path=spec.spec, device=spec.device, dtype=spec.dtype, model=spec.model, revision=spec.revision,
                    threshold=spec.threshold, text_format=spec.text_format)
    else:
        local = spec is not None and Path(os.fspath(spec)).exists()
        key = (str(Path(spec).resolve()) if local else spec, device, str(dtype))
        load = dict(path=spec, device=device, dtype=dtype)
    if key not in _LOADED:
        space = FeatureSpace.load(**load)
        _LOADED[key] = _LOADED.setdefault(space.source, space)  # found again by its source, e.g. in a worker
    return _LOADED[key]


def resolve_space_folder(path: Any = None, *, revision: str | None = None, token: str | bool | None = None) -> Path:
    """The local folder of feature space ``path``: a folder, a Hub repo id (downloaded), or None
    (the embedded default)."""
    from fac_metric.space.defaults import default_space_path

    if path is None:
        return default_space_path()
    local = Path(os.fspath(path))
    if local.is_dir():
        if not (local / SPACE_FILE).is_file():
            raise FacModelError(f"{local} is not a feature space: it has no {SPACE_FILE}")
        return local
    if local.exists() or str(path).startswith((".", "/")) or str(path).count("/") != 1:
        raise FacModelError(f"feature space {str(path)!r} not found: pass a folder holding {SPACE_FILE}, or a Hub repo id 'namespace/name'")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if offline():  # a repo downloaded before is read from the Hub cache, as transformers does
        try:
            return Path(snapshot_download(str(path), revision=revision, token=token, local_files_only=True))
        except LocalEntryNotFoundError as err:
            at = f" at revision {revision!r}" if revision else ""
            raise FacModelError(
                f"feature space {str(path)!r}{at} is not in the Hub cache, and HF_HUB_OFFLINE=1 forbids downloading "
                "it: unset HF_HUB_OFFLINE once to download it, or pass a local folder (the embedded default needs no argument)"
            ) from err
    try:
        return Path(snapshot_download(str(path), revision=revision, token=token))
    except Exception as err:
        from fac_metric.llm.http import redact

        raise FacModelError(f"cannot download feature space {str(path)!r}: {redact(str(err).splitlines()[0])}") from err


def _model_of(cfg: SpaceConfig, folder: Path) -> str:
    """The LM a space folder names: a relative name of a model folder inside it (``lm`` in a
    space published with its weights) resolves there; anything else is a name, path or Hub id."""
    inside = folder / cfg.model
    if not Path(cfg.model).is_absolute() and (inside / "config.json").is_file():
        return str(inside)
    return cfg.model

