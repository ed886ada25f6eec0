"""Load an SAE: a sae-lens folder, a sae-lens release, or the paper's released checkpoints.

Owns: turning what a user names into a sae-lens ``SAE`` on the right device, with safetensors
or ``torch.load(weights_only=True)`` only, and clear errors for missing or corrupt files. Must
not: know about LMs or pooling.

Accepted specs:

- a folder holding sae-lens' ``cfg.json`` + ``sae_weights.safetensors``;
- ``"RELEASE/SAE_ID"`` or ``(release, sae_id)``: ``SAE.from_pretrained`` of sae-lens' catalogue
  (ids with dots and slashes, as sae-lens writes them), or ``"org/repo/SAE_ID"`` of any Hub repo
  sae-lens reads (see :func:`split_sae_spec`); from the Hub, or from its cache offline;
- a ``.pth``/``.pt`` file of the FAC paper (``Zhongzhi1228/sae_*_h65536``): a dict
  ``{"weight": state_dict, "config": {"d_inp", "d_hide", "topK"?}}`` of a tied TopK SAE, whose
  encoder is ``relu(topk((x - b_dec) @ W_enc + b_enc))`` and decoder ``W_enc.T``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from fac_metric.errors import FacModelError
from fac_metric.space.models import offline

PAPER_DEFAULT_K = 20
"""The paper's final k (annealed from 200 to 20) when a checkpoint does not record its own."""


def load_sae(spec, device: str | torch.device = "cpu"):
    """Load the SAE named by ``spec`` (see the module docstring) onto ``device``."""
    from sae_lens import SAE

    if isinstance(spec, (tuple, list)):
        return _from_release(*spec, device=device)
    path = Path(os.fspath(spec))
    if path.is_dir():
        if not (path / "cfg.json").is_file() or not (path / "sae_weights.safetensors").is_file():
            raise FacModelError(f"SAE folder {path} lacks cfg.json or sae_weights.safetensors (sae-lens' save_model format)")
        try:
            return SAE.load_from_disk(str(path), device=str(device))
        except Exception as err:  # a truncated or foreign file fails deep inside safetensors/json
            raise FacModelError(f"SAE folder {path} is corrupt or not a sae-lens SAE: {err}") from err
    if path.is_file() and path.suffix in {".pth", ".pt"}:
        return load_paper_checkpoint(path, device=device)
    # Only a file that exists, or a name ending like one, is a path: sae-lens' ids hold dots
    # ("gpt2-small-res-jb/blocks.8.hook_resid_pre"), which are not file suffixes.
    if path.exists() or path.suffix in _FILE_SUFFIXES:
        raise FacModelError(f"cannot read SAE {str(spec)!r}: expected a sae-lens folder or a .pth/.pt file of the FAC paper")
    return _from_release(*split_sae_spec(str(spec)), device=device)


_FILE_SUFFIXES = {".pth", ".pt", ".safetensors", ".json", ".bin", ".ckpt"}


def split_sae_spec(spec: str) -> tuple[str, str]:
    """``(release, sae_id)`` of a string naming a pretrained SAE the way sae-lens does.

    ``"RELEASE/SAE_ID"`` where RELEASE is in sae-lens' catalogue (the id may hold dots and
    slashes), else ``"org/repo/SAE_ID"``: a Hub repo sae-lens reads directly, SAE_ID being the
    folder inside it.

    >>> split_sae_spec("gpt2-small-res-jb/blocks.8.hook_resid_pre")
    ('gpt2-small-res-jb', 'blocks.8.hook_resid_pre')
    >>> split_sae_spec("my-org/my-saes/layer_8/width_16k")
    ('my-org/my-saes', 'layer_8/width_16k')
    """
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    releases = [r for r in get_pretrained_saes_directory() if spec.startswith(r + "/")]
    if releases:
        release = max(releases, key=len)
        return release, spec[len(release) + 1 :]
    parts = spec.split("/")
    if len(parts) >= 3 and all(parts):
        return "/".join(parts[:2]), "/".join(parts[2:])
    raise FacModelError(
        f"SAE {spec!r} is not a local path, nor 'RELEASE/SAE_ID' of a release in sae-lens' catalogue, nor "
        "'org/repo/SAE_ID' of a Hub repo (SAE_ID: the SAE's folder in the repo); pass (release, sae_id) to be explicit")


def _from_release(release: str, sae_id: str, device) -> object:
    from sae_lens import SAE

    try:
        return SAE.from_pretrained(release, sae_id, device=str(device))
    except Exception as err:
        if offline():  # huggingface_hub found nothing in its cache
            raise FacModelError(
                f"SAE {sae_id!r} of {release!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1: unset it to "
                "download it once, or pass a local sae-lens folder (e.g. fac_metric.default_space_path())") from err
        raise FacModelError(f"cannot load SAE {sae_id!r} of {release!r}: {err}") from err


def load_paper_checkpoint(path: str | Path, device="cpu", k: int | None = None):
    """Convert one of the paper's TopK checkpoints into a sae-lens ``TopKSAE``.

    Read with ``torch.load(weights_only=True)``: tensors and plain containers only, no code.
    """
    from sae_lens import SAE

    try:
        states = torch.load(path, map_location="cpu", weights_only=True)
        weight, config = states["weight"], states["config"]
        w_enc = weight["W_enc"].float()
        d_in, d_sae = int(config["d_inp"]), int(config["d_hide"])
    except Exception as err:
        raise FacModelError(f"{path} is not a FAC-paper SAE checkpoint ({{'weight', 'config'}}): {err}") from err
    if tuple(w_enc.shape) != (d_in, d_sae):
        raise FacModelError(f"{path}: W_enc has shape {tuple(w_enc.shape)}, config says ({d_in}, {d_sae})")
    cfg = {
        "architecture": "topk",
        "d_in": d_in,
        "d_sae": d_sae,
        "k": int(k or config.get("topK") or PAPER_DEFAULT_K),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "rescale_acts_by_decoder_norm": False,
        "metadata": {"source": str(path)},
    }
    tensors = {
        "W_enc": w_enc.contiguous(),
        "W_dec": w_enc.T.contiguous(),  # tied weights: the decoder is the encoder's transpose
        "b_enc": weight["b_enc"].float().contiguous(),
        "b_dec": weight["b_dec"].float().contiguous(),
    }
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cfg.json").write_text(json.dumps(cfg))
        save_file(tensors, str(Path(tmp) / "sae_weights.safetensors"))
        return SAE.load_from_disk(tmp, device=str(device))
