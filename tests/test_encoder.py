"""FeatureEncoder: what ``ds.map(FeatureEncoder(...), batched=True)`` writes, its cache identity,
worker processes and iterable datasets, with the embedded default space (no mocks)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import dill
import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk
from datasets.fingerprint import Hasher

from fac_datasets_ext.encoder import FeatureEncoder
from fac_metric.errors import FacInputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def texts(anchor_texts, brown_texts):
    return list(anchor_texts[:5]) + [brown_texts[0][:400], ""]


@pytest.fixture(scope="module")
def chats(anchor_texts, brown_texts):
    return [[{"role": "user", "content": anchor_texts[i]}, {"role": "assistant", "content": brown_texts[i][:200]}]
            for i in range(3)]


def expected(space, items, threshold=None):
    acts = space.encode(items, show_progress=False)
    thr = space.threshold_at(threshold).per_latent
    out = []
    for i in range(acts.n_texts):
        ids, values = acts.row(i)
        keep = values > thr[ids]
        out.append((ids[keep].tolist(), values[keep].tolist()))
    return out


def columns(ds, prefix="fac_"):
    return list(zip(ds[f"{prefix}feature_ids"], ds[f"{prefix}feature_values"]))


def assert_same(got, want):
    """Same ids, and values equal but for the last bits (batch shapes change float sums)."""
    assert [list(ids) for ids, _ in got] == [list(ids) for ids, _ in want]
    for (_, a), (_, b) in zip(got, want):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-5)


def test_ids_and_values_are_the_thresholded_encoding(space, texts, chats):
    ds = Dataset.from_dict({"text": texts})
    out = ds.map(FeatureEncoder(space, batch_size=3), batched=True, batch_size=4)
    want = expected(space, texts)
    got = columns(out)
    assert_same(got, want)
    assert got[-1] == ([], [])  # the empty text: nothing active, and the column types still hold
    assert all(ids == sorted(ids) and all(isinstance(i, int) for i in ids) for ids, _ in got)
    assert str(out.features["fac_feature_ids"]) == "List(Value('int32'))"
    assert str(out.features["fac_feature_values"]) == "List(Value('float32'))"
    # Without batched=True the encoder gets one row at a time: same result.
    assert_same(columns(ds.select(range(2)).map(FeatureEncoder(space))), got[:2])

    # A chat column, other δ and prefix.
    cds = Dataset.from_dict({"messages": chats})
    enc = FeatureEncoder(space, column="messages", threshold=2.0, prefix="m_")
    out = cds.map(enc, batched=True)
    want = expected(space, chats, threshold=2.0)
    assert_same(columns(out, "m_"), want)
    assert out.column_names == ["messages", "m_feature_ids", "m_feature_values"]
    single = enc({"messages": chats[0]})  # one row whose cell is a chat
    assert single["m_feature_ids"].tolist() == want[0][0]


def test_second_map_is_a_cache_hit(space, texts, tmp_path, caplog):
    Dataset.from_dict({"text": texts[:3], "other": texts[3:6]}).save_to_disk(str(tmp_path / "ds"))
    ds = load_from_disk(str(tmp_path / "ds"))
    first = ds.map(FeatureEncoder(space), batched=True)
    with caplog.at_level(logging.INFO, logger="datasets"):
        second = ds.map(FeatureEncoder(None, threshold=space.default_delta), batched=True)
    assert "Loading cached processed dataset" in caplog.text  # the encoder did not run again
    assert second._fingerprint == first._fingerprint
    assert second.cache_files == first.cache_files
    assert columns(second) == columns(first)
    other_delta = ds.map(FeatureEncoder(space, threshold=2.0), batched=True)
    other_column = ds.map(FeatureEncoder(space, column="other"), batched=True)
    assert len({first._fingerprint, other_delta._fingerprint, other_column._fingerprint}) == 3


def test_hash_is_the_identity_and_equal_across_processes(space):
    here = Hasher.hash(FeatureEncoder(space, column="text"))
    assert Hasher.hash(FeatureEncoder(space, column="text", batch_size=7)) == here  # batch_size changes no result
    for other in ({"threshold": 2.0}, {"column": "prompt"}, {"prefix": "x_"}):
        assert Hasher.hash(FeatureEncoder(space, **other)) != here, other
    code = ("from datasets.fingerprint import Hasher; from fac_datasets_ext.encoder import FeatureEncoder; "
            "print(Hasher.hash(FeatureEncoder(None, column='text')))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == here


@pytest.mark.timeout(300)
def test_num_proc_2_matches_one_process(space, texts):
    enc = FeatureEncoder(space)
    assert len(dill.dumps(enc)) < 10_000  # workers get the identity and source, not the model
    ds = Dataset.from_dict({"text": texts})
    threads = torch.get_num_threads()
    try:
        # The parent runs torch on several threads before the fork: what deadlocks an unguarded worker.
        torch.set_num_threads(2)
        space.encode(texts[:2], show_progress=False)
        parallel = ds.map(enc, batched=True, batch_size=2, num_proc=2)
    finally:
        torch.set_num_threads(threads)
    serial = ds.map(enc, batched=True, batch_size=2)
    # Same batches, but the workers run torch on one thread: ids equal, values to the last bits
    # (on this CPU some GEMM shapes sum in another order with another thread count).
    assert_same(columns(parallel), columns(serial))


def test_iterable_dataset_is_mapped_lazily(space, texts):
    ds = Dataset.from_dict({"text": texts[:4]})
    rows = list(ds.to_iterable_dataset().map(FeatureEncoder(space), batched=True, batch_size=3))
    want = ds.map(FeatureEncoder(space), batched=True)
    assert [r["text"] for r in rows] == texts[:4]
    assert_same([(r["fac_feature_ids"], r["fac_feature_values"]) for r in rows], columns(want))
    lazy = ds.to_iterable_dataset().map(FeatureEncoder(space, column="prompt"), batched=True)  # nothing runs yet
    with pytest.raises(FacInputError, match="prompt"):
        next(iter(lazy))


def test_a_stream_mapped_by_the_encoder_declares_its_typed_columns(space, texts):
    from datasets import Features, IterableDataset, List, Value

    def rows():
        for i, text in enumerate(texts[:5]):
            yield {"id": i, "text": text}

    stream = IterableDataset.from_generator(rows, features=Features({"id": Value("int64"), "text": Value("string")}))
    encoder = FeatureEncoder(space)
    assert stream.map(encoder, batched=True).features is None  # what datasets alone gives
    mapped = encoder.map(stream, batch_size=2)
    assert mapped.features == Features({"id": Value("int64"), "text": Value("string"),
                                        "fac_feature_ids": List(Value("int32")),
                                        "fac_feature_values": List(Value("float32"))})
    got = list(mapped)
    want = Dataset.from_dict({"text": texts[:5]}).map(encoder, batched=True)
    assert [r["id"] for r in got] == list(range(5))
    assert_same([(r["fac_feature_ids"], r["fac_feature_values"]) for r in got], columns(want))
    with pytest.raises(FacInputError, match="already has column"):
        encoder.map(mapped)


def test_missing_column_and_bad_cells_say_what_to_fix(space):
    ds = Dataset.from_dict({"prompt": ["a", "b"], "id": [1, 2]})
    with pytest.raises(FacInputError, match=r"column 'text' is not in the dataset: its columns are \['prompt', 'id'\]"):
        ds.map(FeatureEncoder(space), batched=True)
    with pytest.raises(FacInputError, match=r"column 'prompt': text 1 is None"):
        FeatureEncoder(space, column="prompt")({"prompt": ["fine", None]})
    with pytest.raises(FacInputError, match=r"column 'id': text 0 is a int"):
        FeatureEncoder(space, column="id")({"id": 3})


def test_shards_of_the_batch_plan_merge_into_the_one_process_profile(space, anchor_texts):
    """What each process of `fac score --processes N` (or a Scorer under accelerate) encodes:
    every N-th batch of the one-process plan. Merged, the shards' profiles are that profile
    exactly; every text is encoded once (counts would double or drop otherwise)."""
    thr = space.threshold_at(None)
    whole = space.profile(anchor_texts[:21], thr, batch_size=4, show_progress=False)
    for world in (2, 3):
        parts = [space.profile(anchor_texts[:21], thr, batch_size=4, show_progress=False, shard=(r, world))
                 for r in range(world)]
        assert sum(p.n_texts for p in parts) == 21 and all(p.n_texts > 0 for p in parts)
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.merge(part)
        assert np.array_equal(merged.count, whole.count) and np.array_equal(merged.max_activation, whole.max_activation)
        assert merged.n_tokens == whole.n_tokens
    with pytest.raises(FacInputError, match="rank < world"):
        space.profile(anchor_texts[:3], thr, shard=(2, 2))
