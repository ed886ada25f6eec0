"""bf16 (fast where the hardware has it) gives the same FAC as fp32 on the bundled example, within 0.02."""

import pytest

from fac_metric import FacMismatchError
from fac_metric.space.feature_space import FeatureSpace
from fac_metric.scoring import score


def test_auto_dtype_is_float32_on_every_cpu():
    """``dtype="auto"`` runs fp32 on a CPU with or without native bf16: the same data gets the same FAC
    on every CPU (the README's figure included); bf16 is there for whoever asks for it."""
    from fac_metric import get_feature_space

    assert get_feature_space(None).dtype == "float32"


@pytest.mark.slow
def test_bf16_fac_is_within_0_02_of_fp32(heldout_texts, anchor_texts):
    results = {}
    for dtype in ("float32", "bfloat16"):
        space = FeatureSpace.load(dtype=dtype)
        results[dtype] = score(heldout_texts, anchor_texts, feature_space=space, show_progress=False).result.fac
        del space
    assert abs(results["bfloat16"] - results["float32"]) <= 0.02, results


def test_bf16_forced_encodes_close_to_fp32_and_augment_encodes_in_fp32(space, heldout_texts, anchor_texts,
                                                                       local_generator, tmp_path):
    """The bf16 path runs on any CPU when forced (natively or emulated), and stays close to fp32;
    the augmenter encodes in float32 whatever ``dtype="auto"`` would pick on this machine."""
    import datasets

    import fac_datasets_ext
    from fac_metric import SparseActivations

    bf16 = FeatureSpace.load(dtype="bfloat16")
    # Same space, other arithmetic: the fingerprint says so, and counts of the two never mix silently.
    assert bf16.dtype == "bfloat16" and bf16.fingerprint == space.fingerprint + "-bfloat16"
    texts = heldout_texts[:20]
    a, b = space.profile(texts, show_progress=False), bf16.profile(texts, show_progress=False)
    jaccard = (a.active & b.active).sum() / (a.active | b.active).sum()
    assert jaccard > 0.9, jaccard
    with pytest.raises(FacMismatchError, match=r"another dtype \(bfloat16, not float32"):
        a.merge(b)
    with pytest.raises(FacMismatchError, match="another dtype"):
        score(texts, b, feature_space=space, show_progress=False, coverage="binary")
    out = fac_datasets_ext.augment(datasets.Dataset.from_dict({"text": texts}), anchor_texts[:30], max_calls=0,
                                   generator=local_generator, cache_dir=tmp_path, show_progress=False)
    (block,) = (out.run_dir / "encoded" / "data").glob("block-*.safetensors")
    assert SparseActivations.load(block) == space.encode(texts, show_progress=False)  # fp32, to the bit
