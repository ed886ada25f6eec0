"""Run the predictive-validity study end to end (see ``python -m experiments.validity --help``).

Stages, each cached in the work folder so a killed run resumes: encode every text once (SAE
activations, mean residuals, MiniLM embeddings), train one classifier per training set and
score it on the test split, compute every score of every set, then the statistics.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from experiments.validity import encode, fac_variants, sets as sets_mod, stats
from experiments.validity.task import build_task, prompt_background

RELEVANCES = ("background", "prompts", "other_class", "all")
SHIPPED_DEFAULT = "fac[background,binary]"
"""The FAC the product shipped with before this study (relevance contrast vs the prose background)."""
DEFAULT = "fac[all,match]"
"""The product's default now (``fac_metric.score()`` with no options: coverage ``match``, which
with no contrast given takes relevance ``all``). Chosen on two tasks: the best match variant of
the study task, ``fac[background,match]``, ranked sets no better than chance within size on the
check task, where this one led every baseline (docs/results.md, "Does the choice generalise?")."""


@dataclass(frozen=True)
class StudyConfig:
    """The study's size. The full study is the default; ``QUICK`` runs the same code on a sliver."""

    task: str = "harmful"
    """A key of ``experiments.validity.task.TASKS``: the study task, or a check task."""
    per_source: int | None = None
    """Texts kept per source (None: all)."""
    n_benign: int = sets_mod.N_BENIGN
    sizes: tuple[int, ...] = sets_mod.SIZES
    small_anchor: int = 40
    n_prompt_background: int = 557
    n_boot: int = 2000
    dtype: str = "auto"
    """The feature space's compute dtype (``get_feature_space``)."""


# float32 in the quick mode: the same floats on every CPU (bf16 is native on some, emulated on
# others), and the encodings the synthesis study's quick mode reads from the same cache.
QUICK = StudyConfig(per_source=20, n_benign=30, sizes=(4, 8), small_anchor=8, n_prompt_background=20, n_boot=200,
                    dtype="float32")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def downstream(items, training_sets, resid, work: Path) -> np.ndarray:
    from experiments.validity.downstream import auprc

    path = work / f"auprc-{encode._key([s.name for s in training_sets], 'auprc', str(resid.shape))}.json"
    if path.is_file():
        return np.array(json.loads(path.read_text())["auprc"])
    labels = np.array([it.label for it in items])
    test = np.array([i for i, it in enumerate(items) if it.split == "test"])
    out = []
    for ts in training_sets:
        rows = np.array(ts.rows)
        out.append(auprc(resid[rows], labels[rows], resid[test], labels[test]))
    path.write_text(json.dumps({"auprc": out}))
    return np.array(out)


def fac_scores(items, training_sets, acts, prompt_acts, space, anchors: dict[str, list[int]]) -> tuple[dict, dict]:
    """Every FAC variant for every set, per anchor; and what each reference chose."""
    from fac_metric import FeatureProfile

    thr = space.threshold
    background = space.background_profile(thr)
    prompts = FeatureProfile.from_activations(prompt_acts, thr)
    benign_pool = [i for i, it in enumerate(items) if it.split == "pool" and it.label == 0]
    other_class = FeatureProfile.from_activations(acts.select(benign_pool), thr)
    contrasts = {"background": background, "prompts": prompts, "other_class": other_class, "all": None}
    matrix = fac_variants.above(acts, thr)
    scores, chosen = {}, {}
    for anchor_name, rows in anchors.items():
        for rel in RELEVANCES:
            ref = fac_variants.reference(rel, acts.select(rows), thr, rel, contrasts[rel], background)
            chosen[f"{anchor_name}/{rel}"] = {"n_relevant": ref.relevance.n_relevant,
                                              "features": ref.ids.tolist()}
            per_set = [fac_variants.coverages(ref, matrix[positives(items, ts)], acts.select(positives(items, ts)))
                       for ts in training_sets]
            for cov in fac_variants.COVERAGES:
                vals = [p[cov] for p in per_set]
                key = f"fac[{rel},{cov}]" + ("" if anchor_name == "anchor" else f"@{anchor_name}")
                scores[key] = np.array([np.nan if v is None else v for v in vals])
    return scores, chosen


def positives(items, ts) -> list[int]:
    """The positive rows of a set (harmful, in the study task): what its scores read. The anchor
    describes the positive class, and the negative block is the same 300 texts in every set:
    scored with it, every FAC variant saturates (those 300 prompts already fire every form
    feature the anchor has) and every diversity score is dominated by a constant."""
    return [r for r in ts.rows if items[r].label == 1]


def baseline_scores(items, training_sets, emb: np.ndarray, anchor: list[int]) -> dict[str, np.ndarray]:
    """The product's baselines (``fac_metric.baselines``) of every set, from cached embeddings.

    Oriented so that higher means more diverse or more covered (1 − self-BLEU)."""
    from fac_metric.baselines import (cluster_coverage, distinct_n, mean_cosine_distance, ngram_entropy, self_bleu,
                                      soft_coverage, vendi_score)

    out: dict[str, list[float]] = {k: [] for k in ("distinct_1", "distinct_2", "ngram_entropy_2", "1 - self_bleu",
                                                   "mean_cosine_distance", "vendi", "cluster_coverage",
                                                   "soft_coverage")}
    for ts in training_sets:
        rows = positives(items, ts)
        texts = [items[i].text for i in rows]
        e = emb[rows]
        out["distinct_1"].append(distinct_n(texts, 1))
        out["distinct_2"].append(distinct_n(texts, 2))
        out["ngram_entropy_2"].append(ngram_entropy(texts, 2))
        out["1 - self_bleu"].append(1.0 - self_bleu(texts))
        out["mean_cosine_distance"].append(mean_cosine_distance(e))
        out["vendi"].append(vendi_score(e))
        out["cluster_coverage"].append(cluster_coverage(e, emb[anchor]))
        out["soft_coverage"].append(soft_coverage(e, emb[anchor]))
    return {k: np.array(v, float) for k, v in out.items()}


def run(work: Path, cfg: StudyConfig = StudyConfig()) -> dict:
    from fac_metric import get_feature_space

    started = time.time()
    work.mkdir(parents=True, exist_ok=True)
    items = build_task(per_source=cfg.per_source, task=cfg.task)
    training_sets = sets_mod.design(items, sizes=cfg.sizes, n_benign=cfg.n_benign)
    anchor = sets_mod.anchor_rows(items)
    anchors = {"anchor": anchor, f"anchor{cfg.small_anchor}": sets_mod.small_anchor(anchor, cfg.small_anchor)}
    space = get_feature_space(None, dtype=cfg.dtype)
    ids, texts = [it.id for it in items], [it.text for it in items]
    _log(f"{len(items)} texts, {len(training_sets)} training sets, anchor {len(anchor)}")
    acts = encode.sae_activations(space, ids, texts, work, "task")
    pb = prompt_background(cfg.n_prompt_background)
    prompt_acts = encode.sae_activations(space, [f"pb:{i}" for i in range(len(pb))], pb, work, "prompt_bg")
    resid = encode.residuals(space, ids, texts, work, "task")
    emb = encode.embeddings(ids, texts, work, "task")
    _log("encoded")
    y = downstream(items, training_sets, resid, work)
    _log(f"downstream AUPRC {y.min():.3f}..{y.max():.3f}")
    scores, chosen = fac_scores(items, training_sets, acts, prompt_acts, space, anchors)
    scores["set size"] = np.array([len(ts.rows) for ts in training_sets], float)  # = n + 300: a size control
    scores.update(baseline_scores(items, training_sets, emb, anchor))
    _log("scored")
    sizes = np.array([ts.n_positive for ts in training_sets])
    groups = np.array([ts.composition for ts in training_sets])
    result = {"config": asdict(cfg), "n_texts": len(items), "n_anchor": len(anchor), "n_sets": len(training_sets),
              "n_compositions": int(len(np.unique(groups))), "shipped_default": SHIPPED_DEFAULT, "default": DEFAULT,
              "relevant": {k: v["n_relevant"] for k, v in chosen.items()},
              "auprc": {"min": float(y.min()), "max": float(y.max()), "mean": float(y.mean())}}
    result.update(statistics(scores, y, sizes, groups, cfg.n_boot, small=f"anchor{cfg.small_anchor}"))
    result["relevant_of"] = {k: chosen[_reference_of(k, cfg.small_anchor)]["n_relevant"]
                             for k in scores if k.startswith("fac[")}
    result["relevant_features"] = {k: v["features"] for k, v in chosen.items()}
    result["sets"] = [{"name": ts.name, "composition": ts.composition, "n_positive": ts.n_positive,
                       "auprc": round(float(y[j]), 5),
                       "scores": {k: (None if np.isnan(v[j]) else round(float(v[j]), 5)) for k, v in scores.items()}}
                      for j, ts in enumerate(training_sets)]
    result["elapsed_s"] = time.time() - started
    _log("stats done")
    return result


def _reference_of(key: str, small: int) -> str:
    rel = key[len("fac["):].split(",")[0]
    return f"anchor{small}/{rel}" if key.endswith(f"@anchor{small}") else f"anchor/{rel}"


BASELINES_COMPARED = ("cluster_coverage", "soft_coverage", "distinct_2", "1 - self_bleu", "vendi", "set size")


def statistics(scores: dict[str, np.ndarray], y: np.ndarray, sizes: np.ndarray, groups: np.ndarray, n_boot: int,
               small: str) -> dict:
    """Validity of every score with both bootstraps, and paired differences of each FAC variant
    against the baselines (group bootstrap: the conservative one)."""
    reps = {"set": stats.replicates(groups, n_boot, 0, by_group=False),
            "group": stats.replicates(groups, n_boot, 1, by_group=True)}
    table = {}
    for name, x in scores.items():
        if np.isnan(x).any():
            table[name] = {"undefined": int(np.isnan(x).sum())}
            continue
        row = {m: {b: stats.interval(m, x, y, sizes, r).to_dict() for b, r in reps.items()} for m in stats.METRICS}
        if name.startswith("fac["):  # saturation is a property of scores in [0, 1]
            row["share_ge_0.95"] = round(float((x >= 0.95).mean()), 4)
        table[name] = row
    defined = [k for k in scores if "undefined" not in table[k]]
    ws = lambda k: table[k]["within_size_spearman"]["set"]["value"]  # noqa: E731
    order = sorted(defined, key=ws, reverse=True) + [k for k in scores if k not in defined]
    fac_main = [k for k in defined if k.startswith("fac[") and "@" not in k]
    best = max(fac_main, key=ws) if fac_main else None
    paired = []
    compared = [DEFAULT, SHIPPED_DEFAULT, *sorted(fac_main, key=ws, reverse=True)[:4]]  # the defaults and the 4 best
    for a in dict.fromkeys(compared):
        if a not in defined:
            continue
        for b in BASELINES_COMPARED:
            if b not in defined:
                continue
            for metric in ("within_size_spearman", "spearman"):
                paired.append({"a": a, "b": b, "metric": metric,
                               **stats.paired(metric, scores[a], scores[b], y, sizes, reps["group"])})
    versus = [(DEFAULT, SHIPPED_DEFAULT), (best, SHIPPED_DEFAULT), (best, DEFAULT)]
    for a, b in dict.fromkeys((a, b) for a, b in versus if a != b and {a, b} <= set(defined)):
        for metric in ("within_size_spearman", "spearman"):
            paired.append({"a": a, "b": b, "metric": metric,
                           **stats.paired(metric, scores[a], scores[b], y, sizes, reps["group"])})
    return {"table": table, "order": order, "best_fac": best, "paired": paired}
