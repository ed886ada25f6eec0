"""Write what ``fac score`` found for a person: ``report.md``, ``result.json`` and ``coverage.png``.

Owns: the report's layout and the plot. Must not: compute anything the result does not hold
(all numbers come from ``ScoreOutput``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .scoring import ScoreOutput, top_missing


def summary_line(out: ScoreOutput) -> str:
    r = out.result
    if r.fac is None:
        return f"FAC undefined: no relevant anchor features at δ={r.threshold} (try a lower --threshold)"
    if out.anchor_profile is None:
        return f"coverage {r.fac:.3f}: {r.n_covered} of {r.n_reference} live features active on {r.n_texts} texts (δ={r.threshold})"
    return (f"FAC {r.fac:.3f}: {r.n_covered} of {r.n_reference} relevant anchor features covered by {r.n_texts} texts; "
            f"{len(r.missing)} missing (δ={r.threshold}, relevance={r.relevance})")


def result_dict(out: ScoreOutput, n_missing: int = 50) -> dict:
    """The JSON-able result: the FAC figures, the feature space, and the top missing features."""
    r = out.result.to_dict()
    return {
        "fac": r["fac"], "n_covered": r["n_covered"], "n_relevant": r["n_reference"], "n_missing": len(r["missing"]),
        "threshold": r["threshold"], "relevance": r["relevance"], "n_texts": r["n_texts"],
        "n_anchor_texts": r["n_anchor_texts"], "missing_features": r["missing"], "covered_features": r["covered"],
        "top_missing": top_missing(out, n_missing),
        "feature_space": {"model": out.space.model_name, "hook": out.space.reader.hook, "d_sae": out.space.d_sae,
                          "fingerprint": out.space.fingerprint},
    }


def write_report(out: ScoreOutput, folder: str | Path, *, data_name: str = "data", anchor_name: str = "anchor") -> dict:
    """Write the three files into ``folder``; return the result dict."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    res = result_dict(out)
    (folder / "result.json").write_text(json.dumps(res, indent=2) + "\n")
    _plot(out, folder / "coverage.png", data_name, anchor_name)
    lines = [
        "# Feature Activation Coverage report", "",
        f"**{summary_line(out)}**", "",
        f"- data: `{data_name}` ({res['n_texts']} texts)",
        f"- anchor: `{anchor_name}` ({res['n_anchor_texts']} texts)" if out.anchor_profile is not None else "- anchor: none (plain coverage of live latents)",
        f"- feature space: `{res['feature_space']['model']}` at `{res['feature_space']['hook']}`, "
        f"{res['feature_space']['d_sae']} latents, fingerprint `{res['feature_space']['fingerprint']}`",
        f"- threshold δ = {res['threshold']} × each latent's scale; relevance: {res['relevance']}", "",
        "![coverage](coverage.png)", "",
        "## Missing features, most important first", "",
        "FAC counts a relevant feature as covered when at least one text activates it above δ. "
        "These are relevant to the anchor and never activated by the data: the samples to add.", "",
        "| feature | anchor texts | anchor share | strength (× threshold) |", "|---:|---:|---:|---:|",
    ]
    for row in res["top_missing"][:30]:
        lines.append(f"| {row['feature']} | {row['anchor_texts']} | {row['anchor_fraction']:.1%} | {row['relative_strength']:.1f} |")
    if not res["top_missing"]:
        lines.append("| — | | | |")
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return res


def _plot(out: ScoreOutput, path: Path, data_name: str, anchor_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = out.result
    ref = out.anchor_profile or out.data_profile
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.bar(["covered", "missing"], [r.n_covered, len(r.missing)], color=["#4c72b0", "#dd8452"])
    ax1.set_title(f"FAC = {r.fac:.3f}" if r.fac is not None else "FAC undefined")
    ax1.set_ylabel("relevant features")
    share = ref.count / max(ref.n_texts, 1)
    bins = np.linspace(0, max(0.05, float(share[r.covered + r.missing].max(initial=0.05))), 25)
    ax2.hist([share[r.covered], share[r.missing]], bins=bins, stacked=True, label=["covered", "missing"],
             color=["#4c72b0", "#dd8452"])
    ax2.set_xlabel(f"share of {'anchor' if out.anchor_profile is not None else 'data'} texts activating the feature")
    ax2.set_ylabel("features")
    ax2.legend()
    fig.suptitle(f"{data_name} vs {anchor_name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
