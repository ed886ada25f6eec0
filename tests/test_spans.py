"""Top-activating spans: exact top-k per feature, independent of chunking, bounded, stored with the space."""

import numpy as np
import pytest

from fac_metric.meaning.explain import add_spans, top_spans
from fac_metric.space.feature_space import FeatureSpace
from fac_metric.meaning.spans import SPAN_CHUNK, SPAN_TOKENS, collect_spans


@pytest.fixture(scope="module")
def texts(anchor_texts, brown_texts):
    return anchor_texts[:40] + brown_texts[:20]


@pytest.fixture(scope="module")
def heaps(space, texts):
    return collect_spans(space, texts, k=4, show_progress=False)


def test_heaps_hold_the_exact_top_k_texts_of_every_feature(space, texts, heaps):
    acts = space.encode(texts, show_progress=False)
    rows = np.repeat(np.arange(acts.n_texts), np.diff(acts.indptr))
    assert np.array_equal(heaps.count, np.bincount(acts.indices, minlength=space.d_sae))
    for f in np.flatnonzero(heaps.count)[::97]:
        hit = acts.indices == f
        order = np.lexsort((rows[hit], -acts.values[hit]))[:4]
        expected = list(zip(rows[hit][order].tolist(), acts.values[hit][order].tolist()))
        got = [(s.text, s.activation) for s in heaps.top(int(f))]
        assert [t for t, _ in got] == [t for t, _ in expected], f
        assert np.allclose([a for _, a in got], [a for _, a in expected], rtol=1e-5)
    assert heaps.top(int(np.flatnonzero(heaps.count == 0)[0])) == []


def test_chunking_does_not_change_the_result(space, texts, heaps):
    small = collect_spans(space, texts, k=4, chunk_size=7, show_progress=False)
    assert np.array_equal(small.texts, heaps.texts) and np.array_equal(small.positions, heaps.positions)
    assert np.array_equal(small.token_counts, heaps.token_counts)


def test_shards_of_the_corpus_merge_into_the_one_process_heaps(space, texts, heaps):
    """What each process of `fac spans --processes N` collects: its batches (their text ids the
    corpus'), the heaps merged across processes equal one pass over every text."""
    from fac_metric.meaning.spans import TopSpans

    for world, chunk_size in ((2, SPAN_CHUNK), (3, 7)):
        parts = []
        for rank in range(world):
            part = TopSpans.for_space(space, 4)
            for chunk in space.iter_peaks(texts, chunk_size=chunk_size, show_progress=False, shard=(rank, world)):
                part.update(chunk)
            parts.append(part)
        assert sum(p.n_texts for p in parts) == len(texts) and all(p.n_texts < len(texts) for p in parts)
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.merge(part)
        assert np.array_equal(merged.texts, heaps.texts) and np.array_equal(merged.positions, heaps.positions)
        assert np.array_equal(merged.count, heaps.count) and merged.n_texts == heaps.n_texts
        assert np.array_equal(merged.token_counts, heaps.token_counts) and (merged.spans == heaps.spans).all()
        # The same batches as one process (default chunks) give the same floats; other chunks, to float error.
        same = np.array_equal(merged.values, heaps.values)
        assert same if chunk_size == SPAN_CHUNK else np.allclose(merged.values, heaps.values, rtol=1e-4)


def test_a_span_ends_at_the_peak_token_of_its_text(space, texts, heaps):
    tok = space.reader.tokenizer
    for f in np.flatnonzero(heaps.count)[::301]:
        for s in heaps.top(int(f)):
            counted = space.reader.tokenize_all([texts[s.text]])[0]
            ids = [t for t, c in zip(counted.input_ids, counted.counted) if c]
            assert s.token == ids[s.position] and s.peak_token == tok.decode([ids[s.position]])
            start = max(0, s.position - SPAN_TOKENS + 1)
            assert s.span == tok.decode(ids[start : s.position]) + s.peak_token


def test_spans_and_summaries_round_trip_through_the_feature_space_folder(space, heaps, tmp_path):
    import shutil

    from fac_metric.space.defaults import default_space_path

    shutil.copytree(default_space_path(), tmp_path / "space")
    before = (space.facts, space.token_counts)
    try:
        add_spans(space, heaps, n_store=3)
        space.save_facts(tmp_path / "space")
    finally:
        space.facts, space.token_counts = before  # the session's space stays as loaded
    again = FeatureSpace.load(tmp_path / "space", dtype="float32")
    f = int(np.argmax(heaps.count))
    assert [s.text for s in top_spans(again, f)] == [s.text for s in heaps.top(f)[:3]]
    assert again.fact(f)["summary"].startswith("peaks on ") and again.fact(f)["corpus_firings"] == heaps.count[f]
    assert np.array_equal(again.token_counts, heaps.token_counts)
    assert "scale" in again.fact(f)  # the calibration facts are kept


def test_bad_k_and_spans_of_another_space_are_input_errors():
    from types import SimpleNamespace

    from fac_metric.errors import FacInputError
    from fac_metric.meaning.spans import TopSpans

    with pytest.raises(FacInputError, match=r"k=0: k must be >= 1"):
        TopSpans(8, 0, tokenizer=None, vocab_size=4)
    heaps = TopSpans(8, 1, tokenizer=None, vocab_size=4)
    with pytest.raises(FacInputError, match="spans for 8 latents cannot describe a space of 16: collect them"):
        add_spans(SimpleNamespace(d_sae=16, facts=[]), heaps)
