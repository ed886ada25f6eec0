"""FeatureProfile and the FAC math on real encodings of the bundled example data."""

import numpy as np
import pytest

from fac_metric.errors import FacInputError, FacMismatchError
from fac_metric.measure.profile import FeatureProfile, fac
from fac_metric.measure.threshold import Threshold


@pytest.fixture(scope="module")
def anchor_acts(space, anchor_texts):
    return space.encode(anchor_texts[:120], show_progress=False)


def profile(space, acts, threshold=None):
    return FeatureProfile.from_activations(acts, space.threshold_at(threshold))


def test_merge_equals_profiling_the_concatenation(space, anchor_acts):
    whole = profile(space, anchor_acts)
    merged = profile(space, anchor_acts.select(range(50))).merge(profile(space, anchor_acts.select(range(50, 120))))
    assert np.array_equal(whole.count, merged.count)
    assert np.array_equal(whole.max_activation, merged.max_activation)
    assert (whole.n_texts, whole.n_tokens) == (merged.n_texts, merged.n_tokens) == (120, int(anchor_acts.n_tokens.sum()))


def test_save_and_load_round_trip(space, anchor_acts, tmp_path):
    prof = profile(space, anchor_acts)
    loaded = FeatureProfile.load(prof.save(tmp_path / "p"))
    assert np.array_equal(prof.count, loaded.count) and np.array_equal(prof.max_activation, loaded.max_activation)
    assert (loaded.fingerprint, loaded.threshold, loaded.n_texts) == (space.fingerprint, space.threshold, 120)
    assert loaded.delta == space.default_delta


def test_profiles_of_other_spaces_or_thresholds_are_refused(space, anchor_acts):
    a = profile(space, anchor_acts)
    other = profile(space, anchor_acts, threshold=space.default_delta * 2)
    with pytest.raises(FacMismatchError, match="thresholds"):
        fac(a, other)
    foreign = FeatureProfile(a.max_activation, a.count, Threshold(a.delta, a.threshold.per_latent, "another-space"),
                             a.n_texts)
    with pytest.raises(FacMismatchError, match="another feature space"):
        a.merge(foreign)


def test_missing_features_are_ranked_by_anchor_frequency(space, anchor_acts, brown_texts):
    anchor = profile(space, anchor_acts)
    data = profile(space, space.encode(brown_texts[:20], show_progress=False))
    result = fac(data, anchor)
    counts = anchor.count[result.missing]
    assert len(result.missing) > 0 and np.all(np.diff(counts) <= 0)
    assert set(result.missing).isdisjoint(result.covered)
    assert result.n_covered + len(result.missing) == result.n_reference


def test_relevant_set_restricts_the_denominator(space, anchor_acts):
    anchor = profile(space, anchor_acts)
    ids = np.flatnonzero(anchor.active)[:10]
    result = fac(anchor, anchor, relevant=ids)
    assert (result.fac, result.n_reference, result.relevance) == (1.0, 10, "given")
    with pytest.raises(FacInputError, match="relevant feature ids"):
        fac(anchor, anchor, relevant=[space.d_sae + 5])


def test_without_anchor_fac_is_coverage_of_live_latents(space, anchor_acts):
    data = profile(space, anchor_acts)
    live = np.zeros(space.d_sae, bool)
    live[:100] = True
    result = fac(data, None, live=live)
    assert result.n_reference == 100 and result.fac == pytest.approx(data.active[:100].mean())
