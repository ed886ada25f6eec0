"""docs/synthesis.md and the synthesis block of docs/results.md, from the runs' JSON files.

    python -m experiments.synthesis.report

Reads ``docs/synthesis/ontask-*.json`` (:mod:`experiments.synthesis.ontask`),
``docs/synthesis/hand_labels.json`` (a reader's on-task labels of rows, by text hash) and
``docs/synthesis/budget.json`` (:mod:`experiments.synthesis.budget`). Writes nothing it did not
read: a missing file leaves its section out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from experiments.synthesis.budget import SEED_POSITIVES
from experiments.synthesis.rubric import rubric
from experiments.validity.report import KEEP_BEGIN, KEEP_END

DOCS = Path("docs")
RUNS = DOCS / "synthesis"


def text_id(text: str) -> str:
    """A row's id in the hand labels: the first 12 hex digits of its text's SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _ontask() -> list[str]:
    runs = sorted(RUNS.glob("ontask-*.json"))
    if not runs:
        return []
    lines = ["## On-task rows: before and after", "",
             "`python -m experiments.synthesis.ontask --arm {before,after} --budget {6,20}`: 40 IFEval-style",
             "requests as the training set, the 300 bundled IFEval prompts as the anchor, the embedded",
             "SmolLM2-135M-Instruct, seed 0, defaults. *Before*: the prompts shipped until this change (they",
             "describe \"an internal feature\" of \"a language model\"), no gate. *After*: the few-shot prompts",
             "and the on-task gate. On-task by the rubric of `experiments/synthesis/rubric.py`. *Rows the gate",
             "accepts*: the gate rebuilt from the run's own anchor encodings and applied to its rows afterwards",
             "(for *before*, which ran without it, what it would have done).", "",
             "| arm | budget | rows | on-task (rubric) | rows the gate accepts | generator calls | rows per call | rejected as off-task | wall time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in runs:
        r = json.loads(path.read_text())
        syn, rows = r["synthesis"], r["rows"]
        on = sum(x["on_task"] for x in rows)
        gate = f"{syn['off_task']} of {syn['passed_threshold']} that fired" if syn.get("on_task_gate") else "no gate"
        wall = f"{r['seconds']:.0f} s" + (" (resumed)" if r.get("resumed") else "")
        gated = f"{r['gate_accepts']} of {len(rows)}" if "gate_accepts" in r else "—"
        lines.append(f"| {r['arm']} | {r['budget']} | {len(rows)} | {on} of {len(rows)} ({on / max(len(rows), 1):.0%}) | {gated} | "
                     f"{syn['calls']} | {len(rows) / max(syn['calls'], 1):.3f} | {gate} | {wall} |")
    return lines + [""]


def _agreement() -> list[str]:
    path = RUNS / "hand_labels.json"
    if not path.is_file():
        return []
    labels = json.loads(path.read_text())
    pairs = [(rubric(x["text"])[0], x["on_task"]) for x in labels["rows"]]
    agree = sum(a == b for a, b in pairs)
    n = len(pairs)
    p_on = sum(a for a, _ in pairs) / n
    h_on = sum(b for _, b in pairs) / n
    chance = p_on * h_on + (1 - p_on) * (1 - h_on)
    kappa = (agree / n - chance) / (1 - chance) if chance < 1 else 1.0
    wrong = [x for x, (a, b) in zip(labels["rows"], pairs) if a != b]
    lines = ["### Is the rubric right? Checked by hand", "",
             f"{labels['how']}", "",
             f"Rubric and reader agree on **{agree} of {n}** rows ({agree / n:.0%}; Cohen's κ {kappa:.2f}). "
             f"The reader found {sum(b for _, b in pairs)} on-task, the rubric {sum(a for a, _ in pairs)}."]
    for x in wrong:
        lines.append(f"- disagreement on `{text_id(x['text'])}`: reader {'on' if x['on_task'] else 'off'}-task "
                     f"({x['note']}), rubric {rubric(x['text'])[1]}")
    return lines + [""]


def _fmt(cell: dict | None, digits: int = 3) -> str:
    if cell is None:
        return "—"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


def _budget() -> list[str]:
    path = RUNS / "budget.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    lines = ["## Synthesis against its alternatives at equal budget", "",
             f"`python -m experiments.synthesis.budget --budget {r['budget']} --seeds {len(r['seeds'])}`: the evidence "
             f"study's task (is a request harmful?), its downstream classifier (AUPRC on the {r['n_test']}-request test "
             f"split) and its anchor ({r['n_anchor']} requests). Seed set: {SEED_POSITIVES} harmful requests from one source "
             f"(`{r['seed_source']}`, the study's draws 0–{len(r['seeds']) - 1}) + the study's 300 benign ones; each arm adds "
             f"{r['budget']} rows labelled harmful. Mean ± std over {len(r['seeds'])} seeds (seed set and generation seed). "
             "Binary FAC and *missing covered* count the anchor's contrast features, which synthesis targets; "
             "FAC is the default (match).", "",
             "| arm | AUPRC | binary FAC | missing features covered | FAC (match) | rows added | generator calls | rows per call | missing covered per call | near copies of an anchor text |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, s in r["summary"].items():
        lines.append(f"| {arm} | {_fmt(s['auprc'])} | {_fmt(s['binary_fac'])} | {_fmt(s['missing_covered_share'], 2)} | "
                     f"{_fmt(s['fac'])} | {_fmt(s['rows_added'], 1)} | {_fmt(s['calls'], 1)} | {_fmt(s['rows_per_call'], 2)} | "
                     f"{_fmt(s['missing_covered_per_call'], 2)} | {_fmt(s.get('near_copies_of_anchor'), 1)} |")
    m = {arm: {k: (v or {}).get("mean") for k, v in s.items()} for arm, s in r["summary"].items()}
    fac, plain, same = m["FAC Synthesis"], m["unguided"], m["unguided, equal calls"]
    auprc = {(x["arm"], x["seed"]): x["auprc"] for x in r["runs"]}
    wins = ", ".join(f"{arm} in {sum(auprc[('FAC Synthesis', k)] > auprc[(arm, k)] for k in r['seeds'])} of "
                     f"{len(r['seeds'])}" for arm in m if arm != "FAC Synthesis")
    lines += ["", f"Reading. At equal rows, FAC Synthesis lifts AUPRC from {m['seed only']['auprc']:.3f} to "
              f"{fac['auprc']:.3f} (unguided {plain['auprc']:.3f}, self-instruct {m['self-instruct']['auprc']:.3f}, "
              f"real rows {m['real']['auprc']:.3f}) and covers {fac['missing_covered_share']:.0%} of the seed set's "
              f"missing features (unguided {plain['missing_covered_share']:.0%}; paper: 49.5% → 81.8%). It pays "
              f"{fac['calls']:.0f} calls for its {fac['rows_added']:.0f} rows, so per call plain prompting covers more "
              f"({plain['missing_covered_per_call']:.2f} against {fac['missing_covered_per_call']:.2f}) while it is cheap; "
              f"given the same {same['calls']:.0f} calls it covers {same['missing_covered_per_call']:.2f} per call and "
              f"AUPRC {same['auprc']:.3f}. The default FAC (match, over all the anchor's non-generic features) does "
              f"*not* order these arms as AUPRC does: it scores unguided rows higher ({plain['fac']:.3f}, and "
              f"{same['fac']:.3f} with {same['rows_added']:.0f} rows) than FAC Synthesis ({fac['fac']:.3f}); binary FAC "
              "over the contrast features, which synthesis targets, does. No added row is a near copy of an anchor "
              f"text. Paired by seed, FAC Synthesis has the higher AUPRC than {wins}. Small: "
              f"{len(r['seeds'])} seeds, {r['budget']} rows."]
    return lines + [""]


def _contrastive() -> list[str]:
    bench, ifeval = RUNS / "contrastive.json", RUNS / "ratio-ifeval.json"
    if not bench.is_file():
        return []
    b = json.loads(bench.read_text())
    lines = ["## Contrastive two-step against one-step prompting", "",
             f"`{b['command']}` (Brown passages as the data, the IFEval anchor, 24 features, the same calls per "
             f"feature in both arms): acceptance (passed / samples) one-step {b['one_step']['pass_rate']:.3f}, "
             f"contrastive {b['contrastive']['pass_rate']:.3f}: **{b['acceptance_ratio']:.2f}×** (target ≥ 1.5×: "
             f"{'met' if b['acceptance_ratio'] >= 1.5 else 'not met'}); missing features covered per call "
             f"{b['covered_ratio']:.2f}×."]
    if ifeval.is_file():
        r = json.loads(ifeval.read_text())
        lines.append(f"On the IFEval seed task ({r['task']}), against a one-step arm of equal calls: "
                     f"**{r['pass_ratio']:.2f}×** passed, {r['accepted_ratio']:.2f}× accepted.")
    lines += ["Every attempt to raise it (prompt, counter-example, temperature), with its figures: "
              "[docs/performance.md](performance.md#the-contrastive-pair-why-it-adds-little-here-and-what-was-tried).", ""]
    return lines


def main() -> None:
    body = _ontask() + _agreement() + _budget() + _contrastive()
    (DOCS / "synthesis.md").write_text("\n".join(["# Synthesis: what it writes, and what it is worth", "",
                                                  "Made by `python -m experiments.synthesis.report` from the runs below.",
                                                  ""] + body), encoding="utf-8")
    results = DOCS / "results.md"
    text = results.read_text(encoding="utf-8") if results.is_file() else ""
    start, end = text.find(KEEP_BEGIN), text.find(KEEP_END)
    if 0 <= start < end:
        text = text[:start] + text[end + len(KEEP_END):]
    block = "\n".join([KEEP_BEGIN, "", *[line.replace("## ", "## Synthesis: ", 1) if line.startswith("## ") else line
                                          for line in _budget() + _contrastive()],
                       "See [synthesis.md](synthesis.md) for the on-task runs.",
                       "", KEEP_END])
    results.write_text(text.rstrip() + "\n\n" + block + "\n", encoding="utf-8")
    print(f"wrote {DOCS / 'synthesis.md'} and the synthesis block of {results}")


if __name__ == "__main__":
    main()
