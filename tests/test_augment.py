"""augment_with_fac end to end, with the embedded model generating: FAC rises, rows verify, a
Trainer trains on the result; a run killed with SIGKILL resumes to the same rows without asking
the generator again; 1 and 2 processes (accelerate) give the same profiles and rows."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import datasets

import fac_datasets_ext
from fac_datasets_ext.distributed import encode_one_by_one
from fac_datasets_ext.encoder import FeatureEncoder

FAST = dict(max_new_tokens=40, features_per_round=4, show_progress=False)
BUDGET = 3
"""Rows the shared run accepts (each also costs a generated output)."""


@pytest.fixture(scope="module")
def task_ds(anchor_texts):
    return datasets.Dataset.from_dict({"instruction": anchor_texts[:80], "output": ["(task answer)"] * 80})


@pytest.fixture(scope="module")
def augmented(space, local_generator, heldout_texts, task_ds, tmp_path_factory):
    """Alpaca-style rows of the same task, augmented against the task's anchor until BUDGET rows are accepted."""
    train = datasets.Dataset.from_dict({"instruction": heldout_texts[:30], "input": [""] * 30,
                                        "output": ["I will do that."] * 30})
    out = fac_datasets_ext.augment(train, task_ds, budget=BUDGET, generator=local_generator, feature_space=space,
                                   cache_dir=tmp_path_factory.mktemp("augment"), response_tokens=40, **FAST)
    assert out.report["synthesis"]["stopped_by"] == "budget"
    return train, out


def test_augment_raises_fac_and_every_row_verifies(augmented, space):
    train, out = augmented
    ds, report = out.dataset, out.report
    synthetic = ds.filter(lambda r: r["fac_synthetic"])
    assert len(synthetic) == BUDGET and report["new_rows"] == BUDGET
    assert report["fac_after"] > report["fac_before"] and report["newly_covered"]
    # The original rows come first, unchanged; new rows are complete Alpaca rows.
    assert ds.select(range(len(train))).remove_columns(list(fac_datasets_ext.PROVENANCE_COLUMNS)).to_list() == train.to_list()
    assert all(r["output"] and r["input"] == "" and r["instruction"] not in train["instruction"] for r in synthetic)
    # Each synthetic row re-encodes to its recorded activation, above its feature's threshold.
    acts = encode_one_by_one(space, synthetic["instruction"])
    thresholds = space.threshold.per_latent
    for i, (feature, recorded) in enumerate(zip(synthetic["fac_target_feature"], synthetic["fac_activation"])):
        assert acts.activation(i, feature) == pytest.approx(recorded, rel=1e-6)
        assert recorded > thresholds[feature]
    # The map-style encoder agrees (batched, so to float noise) and shows the target active.
    mapped = synthetic.map(FeatureEncoder(space, column="instruction"), batched=True)
    for row in mapped:
        ids = list(row["fac_feature_ids"])
        assert row["fac_target_feature"] in ids
        assert row["fac_feature_values"][ids.index(row["fac_target_feature"])] == pytest.approx(row["fac_activation"], rel=1e-4)
    syn = report["synthesis"]
    assert syn["accepted"] == BUDGET and syn["calls"] == syn["calls_this_run"] > 0 and 0 < syn["acceptance_rate"] <= 1
    saved = json.loads((out.run_dir / "report.json").read_text())
    assert saved["fac_after"] == report["fac_after"]
    attempts = [json.loads(line) for line in (out.run_dir / "attempts.jsonl").read_text().splitlines()]
    # Every draw is recorded; the calls also count one output per accepted row.
    assert len(attempts) + BUDGET == syn["calls"] and sum(a["accepted"] for a in attempts) == BUDGET
    assert all(a["passed"] == (a["activation"] > thresholds[a["feature"]]) for a in attempts)
    assert all(a["accepted"] == (a["reason"] is None and a["step"] == "step2") for a in attempts if a["passed"])


def test_same_call_again_reuses_the_run(augmented, local_generator, space, task_ds):
    train, out = augmented
    before = local_generator.stats.calls
    again = fac_datasets_ext.augment(train, task_ds, budget=BUDGET, generator=local_generator, feature_space=space,
                                     cache_dir=out.run_dir.parent, response_tokens=40, **FAST)
    assert local_generator.stats.calls == before and again.report["synthesis"]["calls_this_run"] == 0
    assert again.dataset.to_list() == out.dataset.to_list()


def test_augmented_dataset_dry_run_reloads_with_a_card_of_how_it_was_made(augmented, task_ds, tmp_path):
    from fac_datasets_ext.publishing import push_augmented

    train, out = augmented
    plan = push_augmented(out.dataset, out.report, "fac-metric/augmented", dry_run=True, out=tmp_path / "repo")
    assert "data/train-" in plan and ".parquet" in plan and "report.json" in plan and "README.md" in plan
    assert datasets.load_dataset(str(tmp_path / "repo"), split="train").to_list() == out.dataset.to_list()
    card, r = (tmp_path / "repo" / "README.md").read_text(), out.report
    for fact in (f"{r['fac_before']:.3f} → {r['fac_after']:.3f}", r["feature_space"]["fingerprint"],
                 r["synthesis"]["generator"], f"`{r['relevance']}`", f"| δ | {r['threshold']:.3f} |",
                 f"{BUDGET} / None", "| seed | 0 |", f"{len(train)} original + {BUDGET} synthetic"):
        assert fact in card, fact
    assert json.loads((tmp_path / "repo" / "report.json").read_text()) == json.loads(json.dumps(r))
    # offline, a push is refused before any encoding or generator call
    from fac_metric import FacError

    with pytest.raises(FacError, match="HF_HUB_OFFLINE=1"):
        train.augment_with_fac(task_ds, budget=BUDGET, generator="http://127.0.0.1:9/v1", push_to_hub="fac-metric/x",
                               cache_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_trainer_runs_on_the_augmented_dataset(augmented, tmp_path):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from fac_metric.space.models import load_lm

    _, out = augmented
    model, tok = load_lm(None)
    train = out.dataset.remove_columns(list(fac_datasets_ext.PROVENANCE_COLUMNS))
    train = train.map(lambda r: tok(f"{r['instruction']}\n{r['output']}", truncation=True, max_length=48),
                      remove_columns=train.column_names)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-5,
                             report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)


# ------------------------------------------------------------------ processes: kill -9 and accelerate
RUN = dict(budget=2, max_features=4, samples_per_feature=2, max_new_tokens=40)
RUN_ARGS = ["--budget", "2", "--max-features", "4", "--samples-per-feature", "2", "--max-new-tokens", "40", "--quiet"]
"""The same run, as ``augment`` keywords and as ``fac augment`` flags."""


@pytest.fixture(scope="module")
def files(brown_texts, anchor_texts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("augment_files")
    # 70 data rows: two encoding blocks of 64, so two processes both encode.
    for name, texts, label in (("data", brown_texts[:70], 0), ("anchor", anchor_texts[:60], 1)):
        with open(folder / f"{name}.jsonl", "w") as fh:
            for t in texts:
                fh.write(json.dumps({"text": t, "label": label}) + "\n")
    return folder


def _start(files: Path, cache: Path, out: Path, space, generator) -> int:
    """Fork a process that runs what ``fac augment ... RUN_ARGS`` runs, on one thread; its pid.

    Forked, it shares the loaded models (no reload per run); one torch thread, as each process
    of the accelerate run has, so every run computes the same floats. It ends with ``os._exit``:
    it never returns into pytest.
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import torch

            from fac_datasets_ext.cli import _write_rows
            from fac_datasets_ext.io import load_rows

            torch.set_num_threads(1)
            out_ = fac_datasets_ext.augment(load_rows(files / "data.jsonl"), load_rows(files / "anchor.jsonl"),
                                            generator=generator, feature_space=space, cache_dir=cache,
                                            show_progress=False, **RUN)
            _write_rows(out_.dataset, out)
            code = 0
        finally:
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _run_folder(cache: Path) -> Path | None:
    found = [p for p in cache.glob("*") if p.is_dir()] if cache.exists() else []
    return found[0] if found else None


def _report(cache: Path) -> dict:
    return json.loads((_run_folder(cache) / "report.json").read_text())


def _journal_lines(cache: Path) -> int:
    run = _run_folder(cache)
    return sum(len(p.read_text().splitlines()) for p in run.glob("journal/journal-*.jsonl")) if run else 0


def _journaled_completions(cache: Path) -> int:
    """Generator completions already answered and on disk (what a resumed run must not ask again)."""
    total = 0
    for path in _run_folder(cache).glob("journal/journal-*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record["key"].startswith("gen|"):
                total += len(record["value"]) if isinstance(record["value"], list) else 1
    return total


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(files, space, local_generator, tmp_path_factory):
    """One uninterrupted run."""
    cache = tmp_path_factory.mktemp("ref")
    assert _wait(_start(files, cache, cache / "out.jsonl", space, local_generator)) == 0
    return cache


def _kill_when(start, ready, timeout: float = 600) -> bool:
    """Start a run, SIGKILL it as soon as ``ready()``; False if it finished first."""
    pid = start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return False
            if ready():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return True
            time.sleep(0.02)
        return False
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.mark.timeout(1800)
def test_sigkill_at_several_points_then_resume_equals_uninterrupted(files, reference, space, local_generator,
                                                                    tmp_path):
    ref = _report(reference)
    ref_lines = _journal_lines(reference)
    assert ref["new_rows"] >= 1 and ref_lines > 6
    cache, out = tmp_path / "cache", tmp_path / "out.jsonl"

    def start() -> int:
        return _start(files, cache, out, space, local_generator)

    points = [
        ("mid-encoding", lambda: _run_folder(cache) is not None and any(_run_folder(cache).glob("encoded/data/block-*"))),
        ("first answers", lambda: _journal_lines(cache) >= 2),
        ("half way", lambda: _journal_lines(cache) >= ref_lines // 2),
    ]
    for name, ready in points:
        assert _kill_when(start, ready), f"the run finished before the {name} kill point"
    assert not out.exists()
    paid = _journaled_completions(cache)
    assert 0 < paid < ref["synthesis"]["calls"]
    assert _wait(start()) == 0
    final = _report(cache)
    # Same rows, none duplicated or lost, and generator calls: answered ones were never asked again.
    assert _rows(out) == _rows(reference / "out.jsonl")
    texts = [r["text"] for r in _rows(out)]
    assert len(texts) == len(set(texts))
    assert final["synthesis"]["calls"] == ref["synthesis"]["calls"]
    assert paid + final["synthesis"]["calls_this_run"] == ref["synthesis"]["calls_this_run"]
    assert {k: final[k] for k in ("fac_before", "fac_after", "newly_covered")} == \
        {k: ref[k] for k in ("fac_before", "fac_after", "newly_covered")}


@pytest.mark.timeout(1800)
def test_two_processes_match_one(files, reference, tmp_path):
    from safetensors.numpy import load_file

    cache, out = tmp_path / "cache", tmp_path / "out.jsonl"
    accelerate = Path(sys.executable).parent / "accelerate"
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    cli = ["-m", "fac_datasets_ext.cli", "augment", str(files / "data.jsonl"), "--anchor", str(files / "anchor.jsonl"),
           "--cache-dir", str(cache), "-o", str(out), *RUN_ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([*launch, *cli], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _rows(out) == _rows(reference / "out.jsonl")
    for which in ("data", "anchor"):
        one = load_file(str(_run_folder(reference) / "profiles" / which / "profile.safetensors"))
        two = load_file(str(_run_folder(cache) / "profiles" / which / "profile.safetensors"))
        assert all(np.array_equal(one[k], two[k]) for k in one)
    # Each process did a non-empty share of the encoding and of the features, and the shares are disjoint.
    work = [json.loads((_run_folder(cache) / "work" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert all(w["world"] == 2 and w["data"].get("encoded") and w["features"] and w["calls"] > 0 for w in work)
    assert not set(work[0]["data"]["encoded"]) & set(work[1]["data"]["encoded"])
    assert not set(work[0]["features"]) & set(work[1]["features"])
    journals = [{json.loads(line)["key"] for line in (_run_folder(cache) / "journal" / f"journal-{r}.jsonl")
                 .read_text().splitlines()} for r in (0, 1)]
    assert journals[0] and journals[1] and not journals[0] & journals[1]
    assert _report(cache)["synthesis"]["calls"] == _report(reference)["synthesis"]["calls"]


@pytest.mark.slow  # ~1-2 min each; the fast suite covers generated fields with the Alpaca shape above
@pytest.mark.parametrize("shape_columns", ["preference", "messages"])
def test_new_rows_keep_the_dataset_schema(shape_columns, space, local_generator, heldout_texts, anchor_texts, tmp_path):
    prompts = heldout_texts[:20]
    if shape_columns == "preference":
        train = datasets.Dataset.from_dict({"prompt": prompts, "chosen": ["Sure."] * 20, "rejected": ["No."] * 20})
    else:
        train = datasets.Dataset.from_dict({"messages": [[{"role": "user", "content": p},
                                                          {"role": "assistant", "content": "Sure."}] for p in prompts]})
    out = fac_datasets_ext.augment(train, anchor_texts[:80], budget=1, samples_per_feature=2, max_features=8,
                                   generator=local_generator, feature_space=space, cache_dir=tmp_path,
                                   response_tokens=32, **FAST)
    new = out.dataset.filter(lambda r: r["fac_synthetic"])
    assert len(new) == 1
    assert out.dataset.column_names == train.column_names + list(fac_datasets_ext.PROVENANCE_COLUMNS)
    row = new[0]
    if shape_columns == "preference":
        assert row["chosen"] and row["rejected"] and row["prompt"] not in prompts
        encoded = row["prompt"]
    else:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"] and row["messages"][1]["content"]
        encoded = row["messages"][0]["content"]
    acts = encode_one_by_one(space, [encoded])
    assert acts.activation(0, row["fac_target_feature"]) == pytest.approx(row["fac_activation"], rel=1e-6)
    # Response calls are counted: step draws plus one call per generated field of the accepted row.
    syn = out.report["synthesis"]
    fields = 2 if shape_columns == "preference" else 1
    assert syn["calls"] == syn["features_tried"] * 4 + fields


def test_a_failing_generator_loses_nothing_and_is_asked_again(fake_endpoint, space, brown_texts, anchor_texts,
                                                               tmp_path):
    """A real loopback endpoint that answers its first 9 requests (the first run's) with garbage,
    then with a new sentence ending in the last words of the prompt's first fragment (where its
    feature peaks): the first run gets no rows and journals nothing; the same call again asks
    for exactly what failed, and succeeds."""
    from fac_metric.llm import HTTPGenerator
    from tests.servers import FAKE_MODEL, completion_body

    def respond(number: int, payload: dict):
        if number <= 9:
            return 200, b"<html>oops</html>", 0.0
        text = payload["messages"][-1]["content"]
        first = next(line[3:] for line in text.splitlines() if line.startswith("1. "))
        tail = " ".join(first.replace("[[", "").replace("]]", "").split()[-4:])
        return 200, json.dumps(completion_body(f"My garden notes for the spring season: {tail}")).encode(), 0.0

    endpoint = fake_endpoint(respond)
    train = datasets.Dataset.from_dict({"text": brown_texts[:10]})
    # Prompts that show the fragments (a user's own templates may): the endpoint needs the peak words.
    shown = "Fragments where it fires, peak [[marked]]:\n{spans}\nWrite one more."
    kwargs = dict(max_features=3, samples_per_feature=1, feature_space=space, cache_dir=tmp_path, show_progress=False,
                  templates={"step1": shown, "step2": shown}, on_task=False)  # garden notes are not IFEval requests
    # max_failures=None: this run should see every failure (the breaker has its own test in test_hostile).
    first = fac_datasets_ext.augment(train, anchor_texts[:40], generator=HTTPGenerator(
        endpoint.url, model=FAKE_MODEL, max_retries=0, concurrency=1, max_failures=None), **kwargs)
    asked = len(endpoint.requests)
    assert first.report["new_rows"] == 0 and first.report["synthesis"]["rejected"] == {"generator failed": 3}
    assert asked == 9 and first.dataset.to_list() == [{**r, "fac_synthetic": False, "fac_target_feature": None,
                                                       "fac_activation": None, "fac_generator": None} for r in train]
    assert not [line for p in first.run_dir.glob("journal/*.jsonl") for line in p.read_text().splitlines()]
    second = fac_datasets_ext.augment(train, anchor_texts[:40], generator=HTTPGenerator(
        endpoint.url, model=FAKE_MODEL, max_retries=0, concurrency=1), **kwargs)
    assert len(endpoint.requests) == 2 * asked and second.report["synthesis"]["calls_this_run"] == asked
    assert "generator failed" not in second.report["synthesis"]["rejected"]
    assert second.report["new_rows"] >= 1  # a top span, echoed back, fires its feature


def test_max_calls_is_never_exceeded(fake_endpoint, space, brown_texts, anchor_texts, tmp_path):
    from fac_metric.llm import HTTPGenerator
    from tests.servers import FAKE_MODEL, completion_body

    endpoint = fake_endpoint(lambda number, payload: (200, json.dumps(completion_body(f"Note number {number}.")).encode(), 0.0))
    gen = HTTPGenerator(endpoint.url, model=FAKE_MODEL, concurrency=1)
    train = datasets.Dataset.from_dict({"instruction": brown_texts[:10], "output": ["x"] * 10})
    # 4 draws per feature plus, in the worst case, one output per sample: 6 calls reserved a feature.
    out = fac_datasets_ext.augment(train, anchor_texts[:40], max_calls=20, generator=gen, feature_space=space,
                                   cache_dir=tmp_path, show_progress=False)
    syn = out.report["synthesis"]
    assert syn["stopped_by"] == "max_calls" and syn["features_tried"] >= 3
    assert syn["calls"] == len(endpoint.requests) <= 20 and syn["calls"] > 20 - 6
    # An augmented dataset can be augmented again: its provenance columns are kept, not duplicated.
    again = fac_datasets_ext.augment(out.dataset, anchor_texts[:40], max_calls=0, generator=gen, feature_space=space,
                                     cache_dir=tmp_path, show_progress=False)
    assert again.dataset.to_list() == out.dataset.to_list() and again.report["synthesis"]["stopped_by"] == "max_calls"


def test_a_dataset_dict_augmented_on_one_split_keeps_one_schema(space, local_generator, heldout_texts, anchor_texts,
                                                                 tmp_path):
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": heldout_texts[:8]}),
                                   "test": datasets.Dataset.from_dict({"text": heldout_texts[8:12]})})
    out = splits.augment_with_fac(anchor_texts[:30], split="train", max_calls=0, generator=local_generator,
                                  feature_space=space, cache_dir=tmp_path, show_progress=False)
    assert out["train"].features == out["test"].features  # before: test lacked the provenance columns
    assert out["test"]["text"] == heldout_texts[8:12] and out["test"]["fac_synthetic"] == [False] * 4
    assert len(datasets.concatenate_datasets([out["train"], out["test"]])) == 12  # what a schema mismatch breaks


def test_a_stream_is_augmented_from_a_bounded_pass_and_stays_a_stream(space, local_generator, heldout_texts,
                                                                       anchor_texts, tmp_path):
    read = []

    def rows():
        for i, text in enumerate(heldout_texts[:30]):
            read.append(i)
            yield {"text": text}

    stream = datasets.IterableDataset.from_generator(rows, features=datasets.Features({"text": datasets.Value("string")}))
    out = stream.augment_with_fac(anchor_texts[:30], max_rows=8, max_calls=0, generator=local_generator,
                                  feature_space=space, cache_dir=tmp_path, show_progress=False)
    assert isinstance(out, datasets.IterableDataset) and len(read) <= 9  # the bounded pass (datasets reads one ahead)
    got = list(out)
    assert [r["text"] for r in got] == heldout_texts[:30] and not any(r["fac_synthetic"] for r in got)
    # The bounded pass was measured as a Dataset of those rows is.
    report = json.loads(next(tmp_path.glob("*/report.json")).read_text())
    head = datasets.Dataset.from_dict({"text": heldout_texts[:8]})
    direct = fac_datasets_ext.augment(head, anchor_texts[:30], max_calls=0, generator=local_generator,
                                      feature_space=space, cache_dir=tmp_path / "direct", show_progress=False)
    assert report["fac_before"] == direct.report["fac_before"]
    from fac_metric import FacInputError

    with pytest.raises(FacInputError, match="max_rows"):
        stream.augment_with_fac(anchor_texts[:30], max_rows=0)


def test_an_empty_stream_gets_a_clear_error(anchor_texts):
    """Typed or not: once ``datasets``' own "Keys mismatch" and a bare ``StopIteration``."""
    from fac_datasets_ext import FeatureEncoder
    from fac_metric import FacInputError

    def nothing():
        yield from ()

    typed = datasets.Dataset.from_dict({"text": ["a", "b"]}).to_iterable_dataset().filter(lambda row: False)
    untyped = datasets.IterableDataset.from_generator(nothing)
    for stream in (typed, untyped):
        with pytest.raises(FacInputError, match="the stream has no rows"):
            stream.augment_with_fac(anchor_texts[:3])
    with pytest.raises(FacInputError, match="the stream has no rows"):
        FeatureEncoder(column="text").map(untyped)


def test_a_streams_new_rows_follow_it_in_one_schema(monkeypatch, heldout_texts):
    """The assembly alone (the real synthesis is the test above): the stream's rows with
    provenance, then the new rows, one schema, as an IterableDataset."""
    from fac_datasets_ext import augmentation

    def fake_augment(head, *args, **kwargs):
        new = {"text": "a new sample", "fac_synthetic": True, "fac_target_feature": 7, "fac_activation": 3.5,
               "fac_generator": "local"}
        added = datasets.Dataset.from_list([new], features=augmentation._provenance_features(head))
        return datasets.concatenate_datasets([augmentation.with_provenance(head), added])

    monkeypatch.setattr(augmentation, "augment_with_fac", fake_augment)
    stream = datasets.Dataset.from_dict({"text": heldout_texts[:5]}).to_iterable_dataset()
    got = list(augmentation.augment_stream(stream, ["anchor"], max_rows=3))
    assert [r["text"] for r in got] == heldout_texts[:5] + ["a new sample"]
    assert [r["fac_synthetic"] for r in got] == [False] * 5 + [True] and got[-1]["fac_target_feature"] == 7


def test_num_proc_in_a_script_without_a_main_guard_says_how_to_fix_it(tmp_path):
    """Spawned workers import the script again: unguarded, each once re-ran the augmentation and
    met the parent's run lock (two RunBusyError tracebacks, then BrokenProcessPool)."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import datasets, fac_datasets_ext\n"
        "from fac_metric.examples import load_example\n"
        "ds = datasets.Dataset.from_dict({'text': load_example('brown_unseen')[:3]})\n"
        f"ds.augment_with_fac(load_example('ifeval_anchor')[:3], max_calls=0, num_proc=2, cache_dir={str(tmp_path)!r},\n"
        "                    show_progress=False)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1 and "RunBusyError" not in done.stderr
    assert "fac: num_proc workers import your script again" in done.stderr  # from the workers
    assert done.stderr.strip().splitlines()[-1].startswith("fac_metric.errors.FacInputError: an encoding worker")


def test_num_proc_encodes_the_blocks_in_workers_with_the_same_result(space, local_generator, heldout_texts,
                                                                     brown_texts, anchor_texts, tmp_path):
    import torch

    train = datasets.Dataset.from_dict({"text": (heldout_texts + brown_texts)[:66]})  # two blocks of 64
    args = dict(max_calls=0, generator=local_generator, feature_space=space, show_progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs: GEMM sums then match to the last bit
    try:
        alone = fac_datasets_ext.augment(train, anchor_texts[:20], cache_dir=tmp_path / "one", **args)
    finally:
        torch.set_num_threads(threads)
    spread = fac_datasets_ext.augment(train, anchor_texts[:20], cache_dir=tmp_path / "two", num_proc=2, **args)
    work = json.loads(next((tmp_path / "two").glob("*/work/rank-0.json")).read_text())
    assert work["data"] == {"loaded": [0, 1]} and work["anchor"] == {"loaded": [0]}  # workers encoded every block
    assert spread.report["fac_before"] == alone.report["fac_before"]
    assert spread.report["relevant"] == alone.report["relevant"]
    with pytest.raises(fac_datasets_ext.augmentation.FacInputError, match="num_proc"):
        fac_datasets_ext.augment(train, anchor_texts[:20], cache_dir=tmp_path / "bad", num_proc=0, **args)
