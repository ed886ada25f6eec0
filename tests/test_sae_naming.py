"""Any sae-lens SAE, named the way sae-lens names it, encodes like sae-lens.

The reference is TransformerLens' own hooking path: a ``HookedTransformer`` built by
TransformerLens' loaders from the same local weights (what sae-lens runs its SAEs on),
``run_with_cache`` at the SAE's ``hook_name``, then ``sae.encode`` over each text's counted
tokens, max-pooled. fac reads the transformers model instead, through the module
``fac_metric.space.hooks`` places for that name: the two must agree to float tolerance, for
residual-stream hooks before, inside and after a layer, sublayer outputs, sae-lens' input
preprocessing (``apply_b_dec_to_input``, ``normalize_activations``) and TransformerLens'
``center_writing_weights`` on a LayerNorm model. The models are the real default LM (Llama) and
small random GPT-2, Qwen2 and Mistral models built here (no network). Gemma 2 is placed by the
table but TransformerLens cannot load it from a local folder, so its test checks the layout.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fac_metric import FacModelError
from fac_metric.space import FeatureSpace

TEXTS = ["Write a haiku about rain.", "List three prime numbers, then explain why 1 is not prime.",
         "The committee met on Tuesday to discuss the budget."]


def _tiny_config(kind: str, vocab: int):
    from transformers import GPT2Config, MistralConfig, Qwen2Config

    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=256)
    if kind == "gpt2":
        cfg = GPT2Config(n_embd=64, n_layer=3, n_head=4, vocab_size=vocab, n_positions=256, bos_token_id=0,
                         eos_token_id=0)
        cfg.n_ctx = 256  # TransformerLens' converter still reads the old name
        return cfg
    return {"qwen2": Qwen2Config, "mistral": MistralConfig}[kind](**small)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (folder, transformers model): the default LM and three small random models."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fac_metric.space.models import default_lm_dir

    default = str(default_lm_dir())
    tok = AutoTokenizer.from_pretrained(default)
    out = {"llama": (default, AutoModelForCausalLM.from_pretrained(default, dtype=torch.float32).eval())}
    for kind in ("gpt2", "qwen2", "mistral"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(_tiny_config(kind, len(tok))).eval()
        # The folder name must not hold a model family's name: TransformerLens guesses from names.
        folder = tmp_path_factory.mktemp(f"tiny-{kind[0]}")
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        out[kind] = (str(folder), model)
    return out


def _transformer_lens(folder: str, hf_model, center: bool):
    """A HookedTransformer of the same weights, by TransformerLens' own loaders (no processing
    but the SAE's ``center_writing_weights``, as sae-lens recommends loading it)."""
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer
    from transformers import AutoTokenizer

    cfg = loading.get_pretrained_model_config(folder, fold_ln=False, device="cpu", dtype=torch.float32)
    model = HookedTransformer(cfg, tokenizer=AutoTokenizer.from_pretrained(folder), move_to_device=False)
    state = loading.get_pretrained_state_dict(folder, cfg, hf_model=hf_model, dtype=torch.float32)
    model.load_and_process_state_dict(state, fold_ln=False, center_writing_weights=center, center_unembed=False,
                                      fold_value_biases=False, refactor_factored_attn_matrices=False)
    return model.eval()


def _write_sae(folder, d_in: int, hook: str, *, architecture="standard", apply_b_dec=True, normalize="none",
               center=False, legacy=False, seed=0):
    """A sae-lens SAE folder (cfg.json + sae_weights.safetensors) with random weights, in
    sae-lens 6's format (``metadata`` inside cfg.json) or, ``legacy``, the flat pre-6 one
    (``hook_point``, which sae-lens renames ``hook_name``)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    d_sae = 256
    folder.mkdir(parents=True)
    meta = {"hook_point" if legacy else "hook_name": hook, "model_name": "local"}
    if center:
        meta["model_from_pretrained_kwargs"] = {"center_writing_weights": True}
    cfg = {"architecture": architecture, "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": apply_b_dec, "normalize_activations": normalize}
    cfg.update(meta if legacy else {"metadata": {"sae_lens_version": "6.54.12", **meta}})
    tensors = {"W_enc": torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5,
               "b_enc": torch.randn(d_sae, generator=g) * 0.1,
               "W_dec": torch.randn(d_sae, d_in, generator=g) / d_sae ** 0.5,
               "b_dec": torch.randn(d_in, generator=g) * 0.1}
    if architecture == "topk":
        cfg["k"] = 16
    if architecture == "jumprelu":
        tensors["threshold"] = torch.full((d_sae,), 0.05)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    return folder


def _reference(space: FeatureSpace, tl_model, hook: str) -> np.ndarray:
    """``[n_texts, d_sae]``: sae.encode of TransformerLens' cached activations, max over counted tokens."""
    tokenized = space.reader.tokenize_all(TEXTS)
    rows = []
    with torch.inference_mode():
        for t in tokenized:
            _, cache = tl_model.run_with_cache(torch.tensor([t.input_ids]), names_filter=[hook])
            acts = space.sae.encode(cache[hook][0][torch.tensor(t.counted)])
            rows.append(acts.max(dim=0).values.numpy())
    return np.stack(rows)


CASES = [  # (model, hook, SAE preprocessing)
    ("llama", "blocks.15.hook_resid_post", dict(architecture="topk")),
    ("llama", "blocks.10.hook_resid_pre", dict(normalize="constant_norm_rescale")),
    ("llama", "blocks.6.hook_resid_mid", dict(architecture="jumprelu", apply_b_dec=False)),
    ("gpt2", "blocks.1.hook_resid_pre", dict(center=True, legacy=True)),
    ("gpt2", "blocks.1.hook_resid_mid", dict(center=True, normalize="layer_norm")),
    ("gpt2", "blocks.2.hook_resid_post", dict()),
    ("gpt2", "blocks.1.hook_attn_out", dict(center=True)),
    ("qwen2", "blocks.0.hook_resid_pre", dict()),
    ("qwen2", "blocks.1.hook_mlp_out", dict(architecture="topk")),
    ("mistral", "blocks.2.hook_resid_mid", dict(center=True)),  # RMSNorm: TransformerLens does not centre
    ("mistral", "blocks.1.hook_attn_out", dict()),
]


@pytest.mark.parametrize("kind,hook,prep", CASES, ids=[f"{k}-{h}-{'-'.join(f'{a}={b}' for a, b in p.items())}"
                                                       for k, h, p in CASES])
def test_sae_lens_hook_names_encode_like_sae_lens(models, tmp_path, kind, hook, prep):
    folder, hf_model = models[kind]
    sae_dir = _write_sae(tmp_path / "sae", int(hf_model.config.hidden_size), hook, **prep)
    space = FeatureSpace.from_components(folder, sae_dir, text_format="raw", dtype="float32", device="cpu")
    assert space.reader.hook == hook  # taken from the SAE's metadata.hook_name
    ours = space.encode(TEXTS, show_progress=False)
    expected = _reference(space, _transformer_lens(folder, hf_model, center=prep.get("center", False)), hook)
    dense = ours.to_dense()
    assert (expected > 0).sum() > 0, "the reference SAE fired on nothing: the comparison would be empty"
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(dense, expected, atol=1e-4 * scale + 1e-5, rtol=1e-3)


def test_centring_changes_the_encoding_and_the_fingerprint(models, tmp_path):
    """The GPT-2 case above would pass with centring ignored only if centring changed nothing."""
    folder, hf_model = models["gpt2"]
    hook = "blocks.1.hook_resid_pre"
    spaces = [FeatureSpace.from_components(folder, _write_sae(tmp_path / str(c), 64, hook, center=c), text_format="raw",
                                           dtype="float32", device="cpu") for c in (False, True)]
    a, b = (s.encode(TEXTS, show_progress=False).to_dense() for s in spaces)
    assert np.abs(a - b).max() > 1e-3
    assert spaces[0].fingerprint != spaces[1].fingerprint


def test_gemma2_places_resid_mid_after_the_post_attention_norm(tmp_path):
    from transformers import AutoModelForCausalLM, Gemma2Config

    from fac_metric.space.hooks import resolve_hook

    cfg = Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, head_dim=16, vocab_size=128)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    mid = resolve_hook(cfg.model_type, "blocks.1.hook_resid_mid")
    seen = {}
    layer = model.model.layers[1]
    layer.register_forward_pre_hook(lambda m, a, k: seen.__setitem__("pre", a[0] if a else k["hidden_states"]),
                                    with_kwargs=True)
    layer.post_attention_layernorm.register_forward_hook(lambda m, i, o: seen.__setitem__("attn", o))
    model.get_submodule(mid.module).register_forward_pre_hook(lambda m, a: seen.__setitem__("mid", a[0]))
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4]]))
    # Gemma 2 adds the *normalised* attention output: resid_mid = resid_pre + post_attention_layernorm(attn).
    torch.testing.assert_close(seen["mid"], seen["pre"] + seen["attn"])
    assert resolve_hook(cfg.model_type, "blocks.1.hook_mlp_out").module == "model.layers.1.post_feedforward_layernorm"


def test_names_sae_lens_uses_are_parsed_and_unknown_ones_refused(models, tmp_path):
    from fac_metric.space.hooks import resolve_hook
    from fac_metric.space.sae_io import load_sae, split_sae_spec

    # A catalogue release whose id holds dots, a Hub repo with a nested SAE folder.
    assert split_sae_spec("gpt2-small-res-jb/blocks.8.hook_resid_pre") == ("gpt2-small-res-jb", "blocks.8.hook_resid_pre")
    assert split_sae_spec("gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical") == (
        "gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")
    assert split_sae_spec("org/repo/blocks.3.hook_resid_post") == ("org/repo", "blocks.3.hook_resid_post")
    with pytest.raises(FacModelError, match="not a local path, nor 'RELEASE/SAE_ID'"):
        split_sae_spec("not-a-release/x")
    # Offline and not cached: the message says so (not "cannot read SAE ...: expected a folder").
    with pytest.raises(FacModelError, match="not in the Hugging Face cache and HF_HUB_OFFLINE=1"):
        load_sae("gpt2-small-res-jb/blocks.8.hook_resid_pre")
    with pytest.raises(FacModelError, match="does not know where 'bloom' models keep"):
        resolve_hook("bloom", "blocks.2.hook_resid_post")
    with pytest.raises(FacModelError, match="not one fac can place"):
        resolve_hook("llama", "blocks.2.attn.hook_z")
    folder, hf_model = models["qwen2"]
    sae_dir = _write_sae(tmp_path / "sae", 64, "blocks.7.hook_resid_post")
    with pytest.raises(FacModelError, match="layer 7 is out of range"):
        FeatureSpace.from_components(folder, sae_dir, dtype="float32", device="cpu")


def test_layer_agrees_with_the_sae_s_hook_or_is_refused(models, tmp_path):
    """``layer=N`` once replaced the SAE's recorded hook (a resid_pre SAE then read another tensor, and
    a GPT-2 SAE lost its centring); now it must name the tensor the SAE reads."""
    from fac_metric import FacInputError

    folder, hf_model = models["gpt2"]
    post = _write_sae(tmp_path / "post", 64, "blocks.2.hook_resid_post", center=True)
    by_layer = FeatureSpace.from_components(folder, post, layer=2, dtype="float32", device="cpu")
    by_hook = FeatureSpace.from_components(folder, post, dtype="float32", device="cpu")
    assert by_layer.reader.site == by_hook.reader.site and by_layer.reader.site.center
    assert by_layer.fingerprint == by_hook.fingerprint
    pre = _write_sae(tmp_path / "pre", 64, "blocks.2.hook_resid_pre")
    with pytest.raises(FacInputError, match=r"layer=2 .* records hook_name='blocks.2.hook_resid_pre'"):
        FeatureSpace.from_components(folder, pre, layer=2, dtype="float32", device="cpu")
    # hook= still overrides on purpose.
    assert FeatureSpace.from_components(folder, pre, hook="transformer.h.2", dtype="float32",
                                        device="cpu").reader.site.module == "transformer.h.2"


@pytest.mark.parametrize("kind", ["llama", "gpt2", "qwen2", "mistral"])
def test_the_shared_chat_prefix_runs_once_with_the_same_residuals(models, kind):
    """The template's scaffolding (system prompt, role markers) is run once per batch and reused
    from its key/value cache: the counted tokens' residuals equal a full run's to float tolerance.
    Mistral's sliding-window cache is not reused (it runs every token), the others are."""
    from transformers import AutoTokenizer

    from fac_metric.space.layer_reader import LayerReader
    from fac_metric.space.tokenization import TextRule

    folder, hf_model = models[kind]
    hook = "model.layers.2" if kind != "gpt2" else "transformer.h.2"
    reader = LayerReader(hf_model, AutoTokenizer.from_pretrained(folder), hook, TextRule("chat", 128))
    chats = TEXTS + [[{"role": "user", "content": "Why is the sky blue?"}, {"role": "assistant", "content": "Air."}]]
    tokenized = reader.tokenize_all(chats)
    ids = list(range(len(chats)))
    reader.reuse_prefix = False
    full = reader.read(tokenized, ids)
    reader.reuse_prefix = True
    prefix = reader.shared_prefix(tokenized, ids)
    reused = reader.read(tokenized, ids)
    if kind == "mistral":
        assert prefix == 0
    else:  # the default system prompt and role markers: shared by all, counted by none
        assert prefix >= LayerReader.MIN_PREFIX
        assert all(t.input_ids[:prefix] == tokenized[0].input_ids[:prefix] and not any(t.counted[:prefix])
                   for t in tokenized)
    assert full.lengths == reused.lengths
    scale = float(full.residuals.abs().max())
    torch.testing.assert_close(reused.residuals, full.residuals, atol=2e-5 * scale, rtol=1e-4)
