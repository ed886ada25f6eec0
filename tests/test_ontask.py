"""The on-task gate of synthesis, on real encodings: a row that fires its target feature but does
not read like the task is rejected, with the reason recorded; requests of the task pass."""

from __future__ import annotations

import numpy as np
import pytest

from fac_datasets_ext.augmentation import _task_gate
from fac_datasets_ext.dedup import DedupIndex
from fac_datasets_ext.distributed import Ranks, profile_spread
from fac_datasets_ext.journal import Journal
from fac_datasets_ext.prompts import PromptSet
from fac_datasets_ext.shapes import detect_shape
from fac_datasets_ext.synthesis import Settings, Synthesizer, Target

# What the embedded generator wrote when its prompts described "an internal feature" (issue 12).
PLANTED = ("The new feature is to help a language model create a completely new story. The passage you have "
           "requested contains the key aspects of the suggested feature.")


@pytest.fixture(scope="module")
def gate_and_space(space, anchor_texts):
    thr = space.threshold_at(None)
    prof, active = profile_spread(space, anchor_texts[:100], Ranks(), thr, show_progress=False)
    return _task_gate(prof, active, space, thr), space, thr


def test_gate_accepts_the_tasks_requests_and_rejects_text_about_features(gate_and_space, heldout_texts, brown_texts):
    gate, space, thr = gate_and_space
    assert 0 < gate.cutoff < 1 and gate.columns.size > 100

    def active(texts):
        acts = space.encode(texts, show_progress=False)
        return [ids[vals > thr.per_latent[ids]] for ids, vals in (acts.row(i) for i in range(len(texts)))]

    held_out = [gate.accepts(a) for a in active(heldout_texts[:30])]
    assert np.mean(held_out) >= 0.8  # calibrated to reject 5% of the anchor's own texts
    assert not gate.accepts(active([PLANTED])[0])
    assert np.mean([gate.accepts(a) for a in active(brown_texts[:20])]) < np.mean(held_out)


def test_synthesis_records_an_off_task_row_and_never_accepts_it(gate_and_space, tmp_path):
    gate, space, thr = gate_and_space
    acts = space.encode([PLANTED], show_progress=False)
    ids, vals = acts.row(0)
    fired = ids[vals > thr.per_latent[ids]]
    feature = int(fired[np.argmax(vals[vals > thr.per_latent[ids]])])  # the planted row fires this one hardest
    target = Target(feature, "", (), float(space.scales[feature]), float(thr.per_latent[feature]), ("Write a haiku.",))
    shape = detect_shape(["text"])
    seen = DedupIndex(["Write a haiku."], space.encode(["Write a haiku."], show_progress=False), 0.85)
    synth = Synthesizer(space, None, shape, PromptSet.load("text"), Journal(tmp_path), settings=Settings(), seed=0,
                        threshold=thr, dedup=seen, gate=gate, show_progress=False)
    prompt = PromptSet.load("text").fill("step2", examples=["Write a haiku."])
    (attempt,) = synth._verify(target, "step2", [PLANTED], prompt)
    assert attempt.passed and not attempt.on_task  # it fires its target, and still is not data
    assert attempt.reason.startswith("off-task (best match") and attempt.task_match < gate.cutoff
    assert synth._accept(feature, [attempt]) == [] and not attempt.accepted


def test_a_large_anchor_calibrates_on_a_bounded_sample():
    from fac_datasets_ext.ontask import CALIBRATION_TEXTS, TaskGate
    from fac_metric import SparseActivations, Threshold

    rng = np.random.default_rng(1)
    rows = [(np.sort(rng.choice(400, 12, replace=False)), np.full(12, 2.0, np.float32)) for _ in range(2500)]
    thr = Threshold.relative(1.0, np.ones(400, np.float32), "fp")
    big = TaskGate(SparseActivations.from_rows(rows, [12] * 2500, 400, "fp"), thr, columns=range(400))
    assert big.held_out.shape == (CALIBRATION_TEXTS,)  # never an n x n overlap matrix
    small = TaskGate(SparseActivations.from_rows(rows[:300], [12] * 300, 400, "fp"), thr, columns=range(400))
    assert small.held_out.shape == (300,) and 0 < small.cutoff <= big.cutoff + 0.2
