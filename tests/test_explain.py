"""Labels: LLM-free summaries from spans, the paper's two-pass LLM explanation, cached and resumable."""

import numpy as np

from fac_metric.llm.answer_cache import JsonlCache
from fac_metric.meaning.explain import CANNOT_TELL, explain_features, render_spans, summarize
from fac_metric.meaning.spans import Span


def test_summary_prefers_tokens_rare_in_the_corpus():
    freq = np.full(100, 1e-4)
    freq[1] = 0.05  # a very common token, e.g. "the"
    spans = [Span(i, 5.0, 3, "x the", 2, 1) for i in range(3)] + [Span(10 + i, 5.0, 3, "x rain", 2, 2) for i in range(2)]
    assert summarize(spans, freq).startswith('peaks on "rain" (2/5), "the" (3/5)')
    assert summarize(spans).startswith('peaks on "the" (3/5), "rain" (2/5)')  # without frequencies: by count
    assert summarize([]) == "never fired"


def test_render_marks_the_peak_token():
    text = render_spans([Span(0, 3.0, 4, "it will rain", 8, 5)])
    assert text == "1. it will [[rain]]"


def test_llm_explanations_are_cached_and_resume(space, local_generator, tmp_path, anchor_scored):
    features = anchor_scored.result.missing[:2]
    spans = anchor_scored.anchor_spans
    labels = explain_features(space, features, local_generator, spans=spans, cache_dir=tmp_path)
    assert set(labels) == set(features)
    for label in labels.values():
        assert isinstance(label["explanation"], str) and label["explanation"]
        assert label["source"] == local_generator.name and isinstance(label["verified"], bool)
    calls = local_generator.stats.calls
    assert explain_features(space, features, local_generator, spans=spans, cache_dir=tmp_path) == labels
    assert local_generator.stats.calls == calls  # nothing asked twice
    # A run killed mid-write leaves a torn last line: it is ignored and that answer asked again.
    (store_path,) = tmp_path.glob("*.jsonl")
    lines = store_path.read_text().splitlines()
    store_path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    assert len(JsonlCache(store_path)) == 1
    assert explain_features(space, features, local_generator, spans=spans, cache_dir=tmp_path) == labels
    assert local_generator.stats.calls == calls + 1


def test_a_feature_without_spans_cannot_be_told(space, local_generator, tmp_path):
    dead = next(i for i in range(space.d_sae) if not space.fact(i).get("top_spans"))
    label = explain_features(space, [dead], local_generator, cache_dir=tmp_path)[dead]
    assert label["explanation"] == CANNOT_TELL and label["verified"] is False
