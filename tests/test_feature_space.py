"""FeatureSpace.encode: correct pooling, only layers up to L, batching-invariant, clear errors."""

import json
import warnings

import numpy as np
import pytest
import torch

from fac_metric.errors import FacInputError, FacModelError
from fac_metric.space.feature_space import FeatureSpace
from fac_metric.space.sae_io import load_paper_checkpoint, load_sae
from fac_metric.space.tokenization import tokenize

TEXTS = ["Write a haiku about winter.", "Explain recursion to a child in two sentences.",
         "List the first five prime numbers, separated by commas.", "Hi"]


def test_encode_matches_a_direct_per_token_computation(space):
    acts = space.encode(TEXTS, show_progress=False)
    for i, text in enumerate(TEXTS):
        enc = tokenize(space.reader.tokenizer, text, space.reader.rule)
        ids = torch.tensor([enc.input_ids])
        with torch.inference_mode():
            hidden = space.reader.model(input_ids=ids, output_hidden_states=True).hidden_states[16][0]
            z = space.sae.encode(hidden[torch.tensor(enc.counted)].float()).amax(dim=0)
        expected = z.numpy()
        got = np.zeros(space.d_sae, np.float32)
        got[acts.row(i)[0]] = acts.row(i)[1]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        assert acts.n_tokens[i] == sum(enc.counted)


def test_results_do_not_depend_on_batch_size_or_padding(space):
    one = space.encode(TEXTS, batch_size=1, show_progress=False)
    many = space.encode(TEXTS, batch_size=4, show_progress=False)
    assert np.array_equal(one.indptr, many.indptr) and np.array_equal(one.indices, many.indices)
    np.testing.assert_allclose(one.values, many.values, rtol=1e-3, atol=1e-3)


def test_no_layer_after_the_hook_and_no_logits_run(space):
    calls = []
    later = space.reader.model.model.layers[16].register_forward_hook(lambda *a: calls.append("layer16"))
    head = space.reader.model.lm_head.register_forward_hook(lambda *a: calls.append("lm_head"))
    try:
        space.encode(TEXTS[:2], show_progress=False)
    finally:
        later.remove()
        head.remove()
    assert calls == []


def test_long_text_is_truncated_with_one_warning(space):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acts = space.encode(["word " * 2000, "word " * 3000, "short"], show_progress=False)
    messages = [str(w.message) for w in caught if "truncated" in str(w.message)]
    assert len(messages) == 1 and "2 of 3 texts" in messages[0]
    assert acts.n_tokens.max() <= space.reader.rule.max_length


def test_empty_string_gives_no_features_not_an_error(space):
    acts = space.encode(["", "Hello"], show_progress=False)
    assert acts.n_tokens[0] == 0 and len(acts.row(0)[0]) == 0 and len(acts.row(1)[0]) > 0


@pytest.mark.parametrize("bad", [[], None, "a string", [None], [1, 2]])
def test_bad_texts_are_refused_clearly(space, bad):
    with pytest.raises(FacInputError):
        space.encode(bad, show_progress=False)


def test_an_sae_of_another_width_is_refused(space, tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig

    wrong = TopKSAE(TopKSAEConfig(d_in=64, d_sae=128, k=4, dtype="float32", device="cpu"))
    with pytest.raises(FacModelError, match="width 64.*hidden size 576"):
        FeatureSpace(space.reader, wrong, model_name="smollm2")


def test_layer_out_of_range_is_refused():
    with pytest.raises(FacModelError, match="layer 40 is out of range.*0..29"):
        FeatureSpace.from_components(None, "fac_metric/space/default_space", layer=40, dtype="float32")


def test_corrupt_sae_file_is_refused(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 576, "d_sae": 64, "k": 4}))
    (tmp_path / "sae_weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(FacModelError, match="corrupt"):
        load_sae(tmp_path)


def test_unknown_model_fails_fast_offline_and_names_the_default():
    with pytest.raises(FacModelError, match="HF_HUB_OFFLINE.*smollm2-135m-instruct"):
        FeatureSpace.from_components("no-such-org/no-such-model", "fac_metric/space/default_space", layer=15)


def test_unknown_sae_release_fails_fast_offline():
    with pytest.raises(FacModelError, match="HF_HUB_OFFLINE"):
        load_sae("gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82")


def test_hub_feature_space_offline_names_the_local_alternative():
    with pytest.raises(FacModelError, match="HF_HUB_OFFLINE=1"):
        FeatureSpace.load("some-user/some-space")


def test_paper_checkpoint_adapter_computes_the_papers_encoder(space, tmp_path):
    w_enc = space.sae.W_enc.detach().float()
    b_enc, b_dec = space.sae.b_enc.detach().float(), space.sae.b_dec.detach().float()
    path = tmp_path / "topk_l15_h8192.pth"
    weight = {"W_enc": w_enc, "b_enc": b_enc, "b_dec": b_dec, "mask": torch.ones(w_enc.shape[1])}
    torch.save({"weight": weight, "config": {"d_inp": w_enc.shape[0], "d_hide": w_enc.shape[1], "topK": 20}}, path)
    sae = load_paper_checkpoint(path)
    x = torch.randn(5, w_enc.shape[0]) * 20
    h = (x - b_dec) @ w_enc + b_enc
    val, idx = h.topk(20, dim=-1)
    expected = torch.relu(torch.zeros_like(h).scatter(-1, idx, val))
    torch.testing.assert_close(sae.encode(x), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sae.W_dec, w_enc.T)


def test_a_file_that_is_not_a_paper_checkpoint_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"something": torch.zeros(2)}, path)
    with pytest.raises(FacModelError, match="not a FAC-paper SAE checkpoint"):
        load_sae(path)


def test_fingerprint_is_stable_and_changes_with_the_rule(space):
    assert space.fingerprint == FeatureSpace.load(dtype="float32").fingerprint
    raw = FeatureSpace.from_components(None, "fac_metric/space/default_space", layer=15, text_format="raw",
                                       scales=space.scales, dtype="float32")
    assert raw.fingerprint != space.fingerprint


def test_saved_space_loads_back_identically(space, tmp_path):
    space.save(tmp_path / "copy")
    again = FeatureSpace.load(tmp_path / "copy", dtype="float32")
    assert again.fingerprint == space.fingerprint and again.threshold == space.threshold and again.default_delta == space.default_delta
    np.testing.assert_array_equal(again.scales, space.scales)
    assert again.background.n_texts == space.background.n_texts
