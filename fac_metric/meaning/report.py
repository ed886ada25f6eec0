"""Write what ``fac score`` / ``fac explain`` found for a person: ``report.md``, ``report.html``,
``result.json`` and ``coverage.png``.

Owns: the report's layout (the missing features ranked, each with its meaning, anchor frequency,
strength and top spans with the peak token highlighted) and the plot. The HTML page is
self-contained (inline style, the plot embedded), so it can be mailed or attached to a run.
Must not: compute anything the result does not hold (all numbers come from ``ScoreOutput``).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fac_metric.meaning.explain import top_spans
from fac_metric.meaning.relevant import form_warning, relevant_table

if TYPE_CHECKING:  # the report reads a ScoreOutput; it never runs the pipeline
    from fac_metric.scoring import ScoreOutput

REPORT_FEATURES = 30
"""Missing features described in the reports (``result.json`` lists every missing id)."""


def top_missing(out: ScoreOutput, n: int = 20, *, explanations: dict[int, dict] | None = None,
                n_spans: int = 3) -> list[dict]:
    """The first ``n`` missing features with what a reader needs: how often and how strongly the
    anchor fires them, what they mean (LLM explanation when given, else the LLM-free summary) and
    where they fire (the anchor's own top spans, then the feature space's corpus spans)."""
    rows = []
    ref = out.anchor_profile or out.data_profile
    for i in out.result.missing[: None if n < 0 else n]:
        fact = out.space.fact(i)
        llm = (explanations or {}).get(i)
        anchor = (out.anchor_spans.top(i) if out.anchor_spans is not None else [])[:n_spans]
        rows.append({
            "feature": int(i),
            "anchor_texts": int(ref.count[i]),
            "anchor_fraction": float(ref.count[i] / max(ref.n_texts, 1)),
            "max_activation": float(ref.max_activation[i]),
            "relative_strength": float(ref.max_activation[i] / max(float(ref.threshold.per_latent[i]), 1e-12)),
            "summary": fact.get("summary"),
            **({"explanation": llm["explanation"], "explanation_verified": llm.get("verified"),
                "explainer": llm.get("source")} if llm else {}),
            **({"background_fraction": fact["background_fraction"]} if "background_fraction" in fact else {}),
            **({"q_value": out.relevance.per_feature[i]["q"]} if out.relevance is not None
               and "q" in out.relevance.per_feature.get(i, {}) else {}),
            **({"decision": out.relevance.per_feature[i]["decision"]} if out.relevance is not None
               and "decision" in out.relevance.per_feature.get(i, {}) else {}),
            "anchor_spans": [s.to_dict() for s in anchor],
            "corpus_spans": [s.to_dict() for s in top_spans(out.space, i)[:n_spans]],
        })
    return rows

def summary_line(out: ScoreOutput) -> str:
    r = out.result
    if r.fac is None:
        why = f" ({out.relevance.warning})" if out.relevance is not None and out.relevance.warning else ""
        return f"FAC undefined: no relevant anchor features at δ={r.threshold}, relevance={r.relevance}{why}"
    if out.anchor_profile is None:
        return f"coverage {r.fac:.3f}: {r.n_covered} of {r.n_reference} live features active on {r.n_texts} texts (δ={r.threshold})"
    counts = (f"{r.n_covered} of {r.n_reference} relevant anchor features covered by {r.n_texts} texts; "
              f"{len(r.missing)} missing (δ={r.threshold}, relevance={r.relevance})")
    if r.coverage == "match":
        return f"FAC {r.fac:.3f} (match: anchor texts' best overlap with a data text); binary FAC {r.binary_fac:.3f}: {counts}"
    return f"FAC {r.fac:.3f}: {counts}"


def result_dict(out: ScoreOutput, n_missing: int = REPORT_FEATURES, explanations: dict[int, dict] | None = None) -> dict:
    """The JSON-able result: the FAC figures, how relevance was chosen, and the top missing features."""
    r = out.result.to_dict()
    return {
        "fac": r["fac"], "coverage": r["coverage"], "binary_fac": r["binary_fac"], "n_covered": r["n_covered"], "n_relevant": r["n_reference"], "n_missing": len(r["missing"]),
        "threshold": r["threshold"], "relevance": r["relevance"], "n_texts": r["n_texts"],
        "n_anchor_texts": r["n_anchor_texts"],
        "relevance_details": out.relevance.summary() if out.relevance is not None else None,
        "missing_features": r["missing"], "covered_features": r["covered"],
        "top_missing": top_missing(out, n_missing, explanations=explanations),
        "relevant_features": relevant_table(out),
        "form_warning": form_warning(out),
        "feature_space": {"model": out.space.model_name, "hook": out.space.reader.hook, "d_sae": out.space.d_sae,
                          "fingerprint": out.space.fingerprint},
        **({"baselines": out.baselines} if out.baselines is not None else {}),
    }


def baseline_rows(res: dict) -> list[tuple[str, str, str]]:
    """(measure, value, definition) for FAC and each baseline in ``res``, for the tables."""
    from fac_metric.baselines import BASELINE_DEFINITIONS

    fac = ("FAC", _value(res["fac"]), "relevant anchor features the data covers / those the anchor covers")
    return [fac] + [(k, _value(v), BASELINE_DEFINITIONS.get(k, "")) for k, v in res.get("baselines", {}).items()]


def _value(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_report(out: ScoreOutput, folder: str | Path, *, data_name: str = "data", anchor_name: str = "anchor",
                 explanations: dict[int, dict] | None = None, n_features: int = REPORT_FEATURES) -> dict:
    """Write the four files into ``folder``; return the result dict.

    Each file is made whole in a staging folder beside ``folder`` first, then moved into place,
    so a failure or a kill midway never leaves half a report (other files in ``folder`` stay)."""
    import shutil

    folder = Path(folder)
    check_writable_folder(folder, "the report folder")
    res = result_dict(out, n_features, explanations)
    stage = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    stage.mkdir(parents=True, exist_ok=True)
    try:
        (stage / "result.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _plot(out, stage / "coverage.png", data_name, anchor_name)
        (stage / "report.md").write_text(_markdown(out, res, data_name, anchor_name), encoding="utf-8")
        (stage / "report.html").write_text(_html(out, res, data_name, anchor_name, stage / "coverage.png"),
                                           encoding="utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            os.replace(stage / name, folder / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return res


REPORT_FILES = ("result.json", "coverage.png", "report.md", "report.html")
"""What :func:`write_report` writes into its folder."""


def check_writable_folder(folder: str | Path, what: str) -> None:
    """Refuse, before any work, a ``folder`` that cannot be written: an existing file, or a path
    whose nearest existing parent is not a writable folder. Creates nothing.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "taken"
    >>> _ = f.write_text("x")
    >>> check_writable_folder(f / "report", "the report folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fac_metric.errors.FacInputError: the report folder .../taken/report cannot be made: .../taken is a file, not a folder
    """
    from fac_metric.errors import FacInputError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FacInputError(f"{what} {folder} is a file: pass a folder (or a new name)")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FacInputError(f"{what} {folder} cannot be made: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FacInputError(f"{what} {folder} cannot be written: {parent} is not writable")


# ------------------------------------------------------------------ shared facts of both formats
def _facts(out: ScoreOutput, res: dict, data_name: str, anchor_name: str) -> list[str]:
    fs = res["feature_space"]
    facts = [f"data: {data_name} ({res['n_texts']} texts)",
             f"anchor: {anchor_name} ({res['n_anchor_texts']} texts)" if out.anchor_profile is not None
             else "anchor: none (plain coverage of live latents)",
             f"feature space: {fs['model']} at {fs['hook']}, {fs['d_sae']} latents, fingerprint {fs['fingerprint']}",
             f"threshold δ = {res['threshold']} × each latent's scale"]
    rel = res["relevance_details"]
    if rel:
        how = {"contrast": f"{rel.get('test')} at FDR {rel.get('alpha')} against {rel.get('n_contrast_texts')} contrast texts",
               "judge": f"LLM judge {rel.get('generator')} with the {rel.get('guideline')} guideline: "
                        f"{rel.get('n_judged')} judged, parse rate {_pct(rel.get('parse_rate'))}, "
                        f"{rel.get('n_unknown')} unknown, {rel.get('n_not_judged')} not judged (max_judged)",
               "all": f"every non-generic anchor feature (background share ≤ {rel.get('generic_fraction')})"}[rel["mode"]]
        facts.append(f"relevance: {rel['mode']}: {rel['n_relevant']} of {rel['n_candidates']} anchor features; {how}")
        if rel.get("warning"):
            facts.append(f"warning: {rel['warning']}")
    elif out.anchor_profile is not None:
        facts.append(f"relevance: {res['relevance']}")
    if res.get("form_warning"):
        facts.append(f"warning: {res['form_warning']}")
    if res.get("coverage") == "match":
        facts.append("coverage: match: per anchor text, the best Jaccard overlap of its relevant features with one "
                     "data text, averaged (`--coverage binary`: the paper's share of relevant features covered)")
    return facts


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _meaning(row: dict) -> str:
    if row.get("explanation"):
        check = "confirmed by the check pass" if row.get("explanation_verified") else "not confirmed by the check pass"
        return f"{row['explanation']} ({row.get('explainer')}, {check}); spans: {row.get('summary') or 'none'}"
    return row.get("summary") or "no spans stored for this feature"


# ------------------------------------------------------------------ markdown
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " ").replace("\r", " "))


def _md_span(span: dict) -> str:
    context, peak = span["span"][: span["peak"]], span["span"][span["peak"] :]
    # Markdown bold must hug its text: a peak token's leading space goes outside the stars.
    lead = peak[: len(peak) - len(peak.lstrip())]
    return f"…{_md(context[-120:])}{' ' if lead else ''}**{_md(peak.strip()) or '∅'}** (activation {span['activation']:.1f})"


def _markdown(out: ScoreOutput, res: dict, data_name: str, anchor_name: str) -> str:
    lines = ["# Feature Activation Coverage report", "", f"**{summary_line(out)}**", ""]
    lines += [f"- {_md(f)}" for f in _facts(out, res, data_name, anchor_name)]
    lines += ["", "![coverage](coverage.png)", ""]
    if "baselines" in res:
        lines += ["## Baselines", "", "The usual text-diversity and embedding measures of the same texts, beside FAC "
                  "(n/a: undefined for this data).", "", "| measure | value | definition |", "|---|---:|---|"]
        lines += [f"| `{name}` | {value} | {_md(what)} |" for name, value, what in baseline_rows(res)]
        lines.append("")
    if res.get("relevant_features"):
        lines += ["## Relevant features, the anchor's most frequent first", "",
                  "Why each counts: how often the anchor fires it against the contrast set. *form*: its top spans "
                  "peak mostly on punctuation or function words.", "",
                  "| feature | label | anchor | contrast | q / decision | form |", "|---:|---|---:|---:|---|---|"]
        for row in res["relevant_features"]:
            why = f"{row['q_value']:.2g}" if "q_value" in row else row.get("decision", "")
            lines.append(f"| {row['feature']} | {_md(row['label'] or '')} | {row['anchor_share']:.0%} | "
                         f"{_pct(row['contrast_share'])} | {why} | {'form' if row['form'] else ''} |")
        lines.append("")
    lines += ["## Missing features, most important first", "",
              "Relevant to the anchor's task and never activated above δ by the data: the samples to add. "
              "Each feature's peak token is in **bold**.", ""]
    if not res["top_missing"]:
        lines.append("None: the data covers every relevant feature.")
    for row in res["top_missing"]:
        lines += [f"### Feature {row['feature']}", "",
                  f"- meaning: {_md(_meaning(row))}",
                  f"- anchor: fires on {row['anchor_texts']} texts ({row['anchor_fraction']:.1%}), "
                  f"up to {row['relative_strength']:.1f}× its threshold"
                  + (f"; q = {row['q_value']:.2g}" if "q_value" in row else "")
                  + (f"; judge: {row['decision']}" if "decision" in row else "")]
        for label, key in (("in the anchor", "anchor_spans"), ("in the feature space's corpus", "corpus_spans")):
            if row[key]:
                lines.append(f"- where it fires {label}:")
                lines += [f"  - {_md_span(s)}" for s in row[key]]
        lines.append("")
    if res["n_missing"] > len(res["top_missing"]):
        lines.append(f"{res['n_missing'] - len(res['top_missing'])} more missing features are listed in result.json.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML
_CSS = """body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h3{margin:1.4em 0 .3em}.lead{font-weight:600}.facts li{color:#444}
.feature{border-top:1px solid #ddd;padding-top:.4em}.span{font-family:ui-monospace,monospace;font-size:13px;
background:#f6f6f6;padding:.15em .4em;margin:.2em 0;border-radius:3px;white-space:pre-wrap}
mark{background:#ffd54f;padding:0 .1em}.act{color:#777;font-size:12px}img{max-width:100%}"""


def _html_span(span: dict) -> str:
    context, peak = span["span"][: span["peak"]], span["span"][span["peak"] :]
    return (f'<div class="span">…{html.escape(context[-160:])}<mark>{html.escape(peak) or "∅"}</mark> '
            f'<span class="act">{span["activation"]:.1f}</span></div>')


def _html(out: ScoreOutput, res: dict, data_name: str, anchor_name: str, plot: Path) -> str:
    png = base64.b64encode(plot.read_bytes()).decode("ascii")
    parts = ["<!doctype html><html lang=en><meta charset=utf-8><title>FAC report</title>", f"<style>{_CSS}</style>",
             "<h1>Feature Activation Coverage report</h1>", f'<p class="lead">{html.escape(summary_line(out))}</p>',
             '<ul class="facts">' + "".join(f"<li>{html.escape(f)}</li>" for f in _facts(out, res, data_name, anchor_name))
             + "</ul>", f'<img alt="coverage plot" src="data:image/png;base64,{png}">']
    if "baselines" in res:
        parts += ["<h2>Baselines</h2>", "<table><tr><th>measure</th><th>value</th><th>definition</th></tr>"
                  + "".join(f"<tr><td>{html.escape(n)}</td><td>{v}</td><td>{html.escape(d)}</td></tr>"
                            for n, v, d in baseline_rows(res)) + "</table>"]
    parts += ["<h2>Missing features, most important first</h2>",
             "<p>Relevant to the anchor's task and never activated above δ by the data: the samples to add. "
             "The peak token of each span is highlighted.</p>"]
    if not res["top_missing"]:
        parts.append("<p>None: the data covers every relevant feature.</p>")
    for row in res["top_missing"]:
        extra = (f"; q = {row['q_value']:.2g}" if "q_value" in row else "") + (
            f"; judge: {html.escape(row['decision'])}" if "decision" in row else "")
        parts += [f'<div class="feature"><h3>Feature {row["feature"]}</h3>',
                  f"<p><b>Meaning:</b> {html.escape(_meaning(row))}<br>"
                  f"<b>Anchor:</b> fires on {row['anchor_texts']} texts ({row['anchor_fraction']:.1%}), up to "
                  f"{row['relative_strength']:.1f}× its threshold{extra}</p>"]
        for label, key in (("In the anchor", "anchor_spans"), ("In the feature space's corpus", "corpus_spans")):
            if row[key]:
                parts.append(f"<p>{label}:</p>" + "".join(_html_span(s) for s in row[key]))
        parts.append("</div>")
    return "\n".join(parts) + "\n</html>\n"


# ------------------------------------------------------------------ plot
def _plot(out: ScoreOutput, path: Path, data_name: str, anchor_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = out.result
    ref = out.anchor_profile or out.data_profile
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    # How many relevant features each dataset covers: the anchor covers all of them by definition.
    names = (["anchor"] if out.anchor_profile is not None else []) + ["data"]
    values = ([r.n_reference] if out.anchor_profile is not None else []) + [r.n_covered]
    bars = ax1.barh(names[::-1], values[::-1], color=["#4c72b0", "#8da0cb"][: len(names)])
    ax1.bar_label(bars, padding=3)
    ax1.set_xlim(0, max(values + [1]) * 1.18)
    ax1.set_xlabel("relevant features covered")
    ax1.set_title(f"FAC = {r.fac:.3f} ({r.relevance})" if r.fac is not None else "FAC undefined")
    share = ref.count / max(ref.n_texts, 1)
    bins = np.linspace(0, max(0.05, float(share[r.covered + r.missing].max(initial=0.05))), 25)
    ax2.hist([share[r.covered], share[r.missing]], bins=bins, stacked=True, label=["covered", "missing"],
             color=["#4c72b0", "#dd8452"])
    ax2.set_xlabel(f"share of {'anchor' if out.anchor_profile is not None else 'data'} texts activating the feature")
    ax2.set_ylabel("relevant features")
    ax2.legend()
    fig.suptitle(f"{data_name} vs {anchor_name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
