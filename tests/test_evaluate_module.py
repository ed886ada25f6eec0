"""The evaluate module: evaluate.load(fac_metric.MODULE_PATH) works offline, streams, caches the model."""

import threading
from pathlib import Path

import evaluate
import pytest

import fac_metric
from fac_metric.space import feature_space


@pytest.fixture(scope="module")
def measurement():
    return evaluate.load(fac_metric.MODULE_PATH)


def test_compute_returns_fac_and_missing_features(measurement, heldout_texts, anchor_texts):
    r = measurement.compute(data=heldout_texts[:5], anchor=anchor_texts[:100])
    assert set(r) == {"fac", "binary_fac", "coverage", "n_covered", "n_relevant", "missing_features", "threshold",
                      "relevance", "relevance_warning", "relevant_features", "form_warning"}
    # the default: match coverage over every non-generic anchor feature (docs/results.md)
    assert r["relevance"] == "all" and r["relevance_warning"] is None and r["form_warning"] is None
    assert r["coverage"] == "match" and 0 <= r["fac"] <= 1 and 0 < r["binary_fac"] < 1
    assert len(r["relevant_features"]) == 20 and {"feature", "label", "anchor_share", "form"} <= set(r["relevant_features"][0])
    assert 0 < r["fac"] < 1 and r["n_covered"] < r["n_relevant"]
    assert len(r["missing_features"]) == min(100, r["n_relevant"] - r["n_covered"])


def test_add_batch_streaming_equals_one_call(measurement, heldout_texts, anchor_texts):
    data = heldout_texts[:20]
    whole = measurement.compute(data=data, anchor=anchor_texts[:60])
    for start in range(0, len(data), 7):
        measurement.add_batch(data=data[start : start + 7])
    assert measurement.compute(anchor=anchor_texts[:60]) == whole


def test_eight_threads_computing_on_one_module_each_get_their_own_result(measurement, heldout_texts, anchor_texts):
    # evaluate keeps one accumulation per module: unlocked, each of these calls failed (one
    # thread closed or emptied another's cache file, or read a half-written one).
    subsets = [heldout_texts[3 * i : 3 * i + 2 + i % 3] for i in range(8)]
    anchor = anchor_texts[:8]
    alone = [measurement.compute(data=s, anchor=anchor, coverage="binary", relevance="all") for s in subsets]
    together: list = [None] * 8

    def run(i):
        try:
            together[i] = measurement.compute(data=subsets[i], anchor=anchor, coverage="binary", relevance="all")
        except Exception as err:  # what a thread raised is the failure to show
            together[i] = repr(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone
    assert len({r["n_covered"] for r in alone}) > 1  # the subsets differ, so a mixed-up result would show


def test_chat_messages_are_accepted(measurement, anchor_texts):
    chats = [[{"role": "user", "content": t}] for t in anchor_texts[:10]]
    as_chat = measurement.compute(data=chats, anchor=anchor_texts[:60])
    as_text = measurement.compute(data=anchor_texts[:10], anchor=anchor_texts[:60])
    assert as_chat == as_text


def test_the_model_loads_once_across_calls(measurement, anchor_texts):
    measurement.compute(data=anchor_texts[:3], anchor=anchor_texts[:5])
    cached = dict(feature_space._LOADED)
    measurement.compute(data=anchor_texts[3:6], anchor=anchor_texts[:5])
    assert feature_space._LOADED == cached and all(feature_space._LOADED[k] is cached[k] for k in cached)


def test_fac_metric_load_and_load_metric_return_the_module(anchor_texts):
    for module in (fac_metric.load(), fac_metric.load_metric("fac")):
        assert module.name == "fac" and "Feature Activation Coverage" in module.description
    with pytest.raises(ValueError, match="only provides 'fac'"):
        fac_metric.load_metric("accuracy")


def test_relevance_modes_and_a_user_contrast_set(measurement, heldout_texts, anchor_texts, brown_texts):
    data, anchor = heldout_texts[:5], anchor_texts[:50]  # each compute encodes the anchor again
    default = measurement.compute(data=data, anchor=anchor, coverage="binary")
    assert default["relevance"] == "contrast" and default["fac"] == default["binary_fac"]  # the paper's FAC
    every = measurement.compute(data=data, anchor=anchor, relevance="all", coverage="binary")
    assert every["relevance"] == "all" and every["n_relevant"] > default["n_relevant"]
    # Against unrelated prose as the contrast set, more anchor features stand out than against the
    # shipped background (which is also prose, but the test has 557 texts of it, not 20).
    own = measurement.compute(data=data, anchor=anchor, contrast=brown_texts[:20])
    assert own["relevance"] == "contrast" and own["n_relevant"] != default["n_relevant"]
    with pytest.raises(ValueError, match="relevance='nope' is not one of"):
        measurement.compute(data=data, anchor=anchor, relevance="nope")
    # Explicit ids go through the same argument, as in score() and augment_with_fac().
    ids = default["missing_features"][:3] + [0]
    given = measurement.compute(data=data, anchor=anchor, relevance=ids)
    assert given["relevance"] == "given" and given["n_relevant"] <= len(ids) and given["n_covered"] == 0


def test_empty_data_is_a_clear_error(measurement, anchor_texts):
    with pytest.raises(ValueError, match="data"):
        measurement.compute(data=[], anchor=anchor_texts[:5])


TEXT_DUPLICATES = str(Path(__file__).parent / "data" / "evaluate_modules" / "text_duplicates")


def test_combine_with_another_measurement_takes_fac_options_at_load(measurement, heldout_texts, anchor_texts):
    # evaluate.combine forwards every compute() keyword to every module: FAC's own options are
    # given to evaluate.load, and compute() sends only what all modules take (data=).
    data = heldout_texts[:6] + heldout_texts[:2]  # two duplicates for the other measurement to find
    anchor = anchor_texts[:40]
    duplicates = evaluate.load(TEXT_DUPLICATES)
    with pytest.raises(TypeError, match="anchor"):  # what users hit: the other module is given anchor=
        evaluate.combine([duplicates, measurement]).compute(data=data, anchor=anchor)
    combined = evaluate.combine([fac_metric.load(anchor=anchor, n_missing=5), duplicates])
    r = combined.compute(data=data)
    alone = measurement.compute(data=data, anchor=anchor, n_missing=5)
    assert r["fac"] == alone["fac"] and r["missing_features"] == alone["missing_features"]
    assert r["duplicate_fraction"] == pytest.approx(0.25)
    for start in range(0, len(data), 3):  # streaming through the combination too
        combined.add_batch(data=data[start : start + 3])
    assert combined.compute() == r
    # Options at compute() still override those given at load.
    assert fac_metric.load(anchor=anchor, coverage="binary").compute(data=data, coverage="match")["fac"] == alone["fac"]


def test_options_at_load_are_checked_at_load(anchor_texts):
    with pytest.raises(fac_metric.FacInputError, match="n_missing"):
        fac_metric.load(anchor=anchor_texts[:5], n_missing="all")
    with pytest.raises(fac_metric.FacInputError, match="not predictions="):
        fac_metric.load().compute(predictions=["a text"])


_RANK = """
import json, sys
import fac_metric
from fac_metric.examples import load_example
rank, cache = int(sys.argv[1]), sys.argv[2]
data = load_example("ifeval_heldout")[:12]
m = fac_metric.load(num_process=2, process_id=rank, cache_dir=cache, experiment_id="two", timeout=300,
                    anchor=load_example("ifeval_anchor")[:40], n_missing=-1)
for start in (rank * 6, rank * 6 + 4):                        # each process adds its own half
    m.add_batch(data=data[start : min(start + 4, rank * 6 + 6)])
result = m.compute()
print(json.dumps({"encoded_here": m._encoded_here, "result": result}))
"""


def test_two_processes_each_encode_their_share_and_process_0_returns_the_one_process_result(
        tmp_path, heldout_texts, anchor_texts):
    import json
    import os
    import subprocess
    import sys

    script = _RANK
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(rank), str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for rank in (0, 1)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [o["encoded_here"] for o in outs] == [6, 6]  # neither process encoded the other's texts
    assert outs[1]["result"] is None
    alone = fac_metric.load().compute(data=heldout_texts[:12], anchor=anchor_texts[:40], n_missing=-1)
    assert outs[0]["result"] == json.loads(json.dumps(alone))
    assert not list(tmp_path.rglob("*.fac.safetensors"))  # the shards are cleaned up with evaluate's files
