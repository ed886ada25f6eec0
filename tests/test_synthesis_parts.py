"""The parts of synthesis that need no generation: shapes, templates, cleaning, dedup, journal, argument checks."""

from __future__ import annotations

import re

import pytest

import datasets

import fac_datasets_ext
from fac_datasets_ext.journal import Journal
from fac_datasets_ext.prompts import PromptSet, prompt_text
from fac_datasets_ext.shapes import detect_shape
from fac_datasets_ext.dedup import DedupIndex, copies, normalise
from fac_datasets_ext.synthesis import Settings, clean_sample, draw_seed
from fac_metric.measure.activations import SparseActivations
from fac_metric.errors import FacInputError

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a river."},
        {"role": "assistant", "content": "The Nile."}]


@pytest.mark.parametrize("columns, name, column, responses", [
    (["text", "label"], "text", "text", ()),
    (["messages"], "messages", "messages", ("response",)),
    (["prompt", "chosen", "rejected"], "preference", "prompt", ("chosen", "rejected")),
    (["instruction", "input", "output"], "instruction", "instruction", ("output",)),
    (["question", "answer_id"], "text", "question", ()),
])
def test_shapes_are_detected_from_columns(columns, name, column, responses):
    shape = detect_shape(columns)
    assert (shape.name, shape.column, shape.responses) == (name, column, responses)


def test_shape_encodes_the_part_a_new_row_is_synthesised_for():
    assert detect_shape(["messages"]).encoded({"messages": CHAT}) == "Name a river."
    pref = detect_shape(["prompt", "chosen", "rejected"])
    assert pref.encoded({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) == "Say hi."
    row = detect_shape(["messages", "source"]).new_row("Name a lake.", {"response": "Baikal."}, ["messages", "source"],
                                                       {"source": "fac"})
    assert row == {"messages": [{"role": "user", "content": "Name a lake."}, {"role": "assistant", "content": "Baikal."}],
                   "source": "fac"}
    row = pref.new_row("Say bye.", {"chosen": "Bye!", "rejected": "Hm."}, ["prompt", "chosen", "rejected", "id"], {})
    assert row == {"prompt": "Say bye.", "chosen": "Bye!", "rejected": "Hm.", "id": None}


def test_shape_overrides_and_errors():
    assert detect_shape(["prompt", "chosen", "rejected"], shape="text", column="chosen").column == "chosen"
    assert detect_shape(["instruction", "output", "text"], column="text").name == "text"
    with pytest.raises(FacInputError, match="lacks"):
        detect_shape(["text"], shape="preference")
    with pytest.raises(FacInputError, match="not in the data"):
        detect_shape(["text"], column="body")
    with pytest.raises(FacInputError, match="cannot tell"):
        detect_shape(["a", "b"])
    with pytest.raises(FacInputError, match="shape="):
        detect_shape(["text"], shape="tabular")


def test_templates_ship_per_shape_and_can_be_replaced(tmp_path):
    steps = {shape: PromptSet.load(shape).steps["step1"] for shape in ("text", "instruction")}
    assert steps["text"] != steps["instruction"]
    # What the generator is shown is what it writes about: no shipped prompt names the mechanics.
    for shape in ("text", "instruction", "messages", "preference"):
        prompts = PromptSet.load(shape)
        for name in prompts.steps:
            shown = prompt_text(prompts.fill(name, examples=["Write a haiku.", "List three fruits."], bad="Rain."))
            assert not re.search(r"feature|language model|fires|activat|score|\[\[", shown, re.IGNORECASE), (shape, name)
            assert shown.count("assistant: ") >= 2 and shown.endswith("subject.")
    assert sorted(PromptSet.load("preference").responses) == ["chosen", "rejected"]
    (tmp_path / "step2.txt").write_text("Like {good} (score {good_score}), not {bad}.")
    mine = PromptSet.load("text", tmp_path)
    assert mine.fill("step2", good="A", good_score="3.0", bad="B") == "Like A (score 3.0), not B."
    assert mine.fingerprint() != PromptSet.load("text").fingerprint()
    with pytest.raises(FacInputError, match=r"placeholder \{colour\}"):
        PromptSet.load("text", {"step1": "Write about {colour}."})
    with pytest.raises(FacInputError, match="not used for shape"):
        PromptSet.load("text", {"output": "{sample}"})
    weak = PromptSet.load("text", {"step2": "<first>\nOne, please.\n<next>\nMore.\n<weak>\nNot like that: more."})
    chat = weak.fill("step2", examples=["A.", "B."], bad="Z.")
    assert [m["content"] for m in chat] == ["One, please.", "A.", "More.", "B.", "More.", "Z.", "Not like that: more."]
    with pytest.raises(FacInputError, match="needs at least one example"):
        weak.fill("step2")
    with pytest.raises(FacInputError, match=r"template 'step1'.*<first> and <next>"):
        PromptSet.load("text", {"step1": "<first>\nOne, please."})
    with pytest.raises(FacInputError, match="start with its <first>"):
        PromptSet.load("text", {"step1": "Hello\n<first>\nOne.\n<next>\nMore."})


def test_cleaning_and_normalising():
    assert clean_sample('Sure! Here is a request:\n"Write a haiku about rain."') == "Write a haiku about rain."
    assert clean_sample("  \n ") == "" and clean_sample(None) == ""
    assert normalise("Write  a HAIKU, about rain!") == normalise("write a haiku about rain")
    assert draw_seed(0, 12, "step1") == draw_seed(0, 12, "step1") != draw_seed(0, 13, "step1")


def test_a_sample_that_echoes_its_prompt_is_a_copy():
    prompt = ("A language model has an internal feature. It fires on the word marked [[like this]]:\n"
              "1. Summarize the history of Japan. Italicize at least 5 [[keywords]] in your response.\n"
              "Write one new request that makes this feature fire strongly. Reply with the request only.")
    assert copies("A language model has an internal feature. It fires on the word marked like this.", prompt)
    assert copies("Summarize the history of Japan. Italicize at least 5 keywords in your response.", prompt)
    assert copies("keywords", prompt)  # shorter than an n-gram: contained whole
    # Reusing the trigger phrase in a new request is what step 2 asks for, not a copy.
    assert not copies("Describe the rules of chess and italicize at least 5 keywords in your answer, please.", prompt)


def test_dedup_by_text_and_by_active_features():
    active = SparseActivations.from_rows([([1, 2, 3, 4, 5], [1.0] * 5), ([10, 11], [1.0, 1.0])], [5, 2], d_sae=32)
    index = DedupIndex(["Write a poem.", "Other text."], active, similarity=0.8)
    assert index.check("write a POEM", [20]) == "duplicate of the data"
    assert index.check("Something new", [1, 2, 3, 4, 5, 6]) == "near-duplicate of the data"  # Jaccard 5/6
    assert index.check("Something new", [1, 2, 20, 21]) is None
    index.add("Something new", [1, 2, 20, 21])
    assert index.check("Something new!", [30]) == "duplicate of a new sample"
    assert index.check("Another", [1, 2, 20, 21]) == "near-duplicate of a new sample"


def test_journal_reads_every_process_file_and_survives_a_torn_line(tmp_path):
    Journal(tmp_path, rank=0).put("gen|step1|3", ["a", "b"])
    Journal(tmp_path, rank=1).put("gen|step1|4", ["c", "d"])
    with open(tmp_path / "journal-1.jsonl", "a") as fh:
        fh.write('{"key": "gen|step2|4", "val')  # killed mid-write
    journal = Journal(tmp_path, rank=0)
    assert journal.get("gen|step1|4") == ["c", "d"] and "gen|step2|4" not in journal and len(journal) == 2


def test_settings_are_checked():
    with pytest.raises(FacInputError):
        Settings(samples_per_feature=0)
    with pytest.raises(FacInputError):
        Settings(near_duplicate=0)
    assert Settings().draws == 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(budget=-1), "budget"),
    (dict(budget=2.5), "budget"),
    (dict(max_calls="ten"), "max_calls"),
    (dict(num_proc=0), "num_proc"),
    (dict(num_workers=4), "map-style arguments"),
    (dict(anchor=[]), "anchor is empty"),
    (dict(anchor="Write a poem."), "anchor must be"),
    (dict(relevance="vibes"), "relevance="),
    (dict(constants={"colour": 1}), "constants for columns"),
    (dict(column="body"), "not in the data"),
    (dict(templates={"step1": "{nope"}), "not a valid format string"),
])
def test_bad_arguments_fail_before_any_work(kwargs, message, tmp_path):
    ds = datasets.Dataset.from_dict({"text": ["A short text.", "Another one."], "label": [0, 0]})
    kwargs = {"anchor": ["Write a poem about the sea."], "cache_dir": tmp_path, "generator": "http://127.0.0.1:9/v1",
              **kwargs}
    with pytest.raises(FacInputError, match=message):
        ds.augment_with_fac(**kwargs)
    assert not any(tmp_path.iterdir())  # nothing was encoded or written


def test_empty_dataset_and_dataset_dict_split_errors(tmp_path):
    with pytest.raises(FacInputError, match="no rows"):
        datasets.Dataset.from_dict({"text": []}).augment_with_fac(anchor=["x"], cache_dir=tmp_path)
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]})})
    with pytest.raises(FacInputError, match="split 'test'"):
        dd.augment_with_fac(anchor=["x"], split="test", cache_dir=tmp_path)
    assert fac_datasets_ext.PROVENANCE_COLUMNS == ("fac_synthetic", "fac_target_feature", "fac_activation",
                                                   "fac_generator")
