"""bf16 (fast where the hardware has it) gives the same FAC as fp32 on the bundled example, within 0.02."""

import pytest

from fac_metric.space.feature_space import FeatureSpace
from fac_metric.scoring import score


@pytest.mark.slow
def test_bf16_fac_is_within_0_02_of_fp32(heldout_texts, anchor_texts):
    results = {}
    for dtype in ("float32", "bfloat16"):
        space = FeatureSpace.load(dtype=dtype)
        results[dtype] = score(heldout_texts, anchor_texts, feature_space=space, show_progress=False).result.fac
        del space
    assert abs(results["bfloat16"] - results["float32"]) <= 0.02, results
