"""How well do feature labels predict activations? A detection test on held-out text.

    python experiments/label_quality.py [--features 100] [--per-class 5] [--generator local]

For a random sample of live features (seeded), held-out texts the feature space never collected
spans from are split into *activating* spans (the feature's peak in a text where it fires above
δ: the last 32 tokens up to the peak) and *non-activating* spans (a 32-token window of a text
where the feature never fires). With ``--per-class`` of each per feature, chance is 50%.
A scorer reads a label and each span and must pick which half of the spans activate the feature
(it ranks them; the top half counts as "activating", so a scorer's Yes/No bias cannot help it).

Labels: the LLM-free summary stored with the space, and the paper's LLM explanation (explain
pass, then check pass) from the same stored spans. Scorers: ``keyword`` (a span scores 1 if it
contains one of the summary's peak tokens; ties broken by a seeded coin) for summaries, and the
``--generator`` itself (log-likelihood of "Yes" vs "No" to "does this label describe the marked
text?") for both kinds of label. Accuracy is over all decisions, with a 95% interval from
resampling features (decisions of one feature are not independent). Writes a JSON of the figures
and per-feature rows next to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import numpy as np

from fac_metric.training.corpora import split_heldout
from fac_metric.examples import load_example
from fac_metric.meaning.explain import CANNOT_TELL, explain_features
from fac_metric.llm import get_generator
from fac_metric import get_feature_space
from fac_metric.meaning.spans import SPAN_TOKENS
from fac_metric.training.train_space import TrainSpaceArgs, default_rows, row_items

_SCORE_PROMPT = ('A feature of a language model is described as: "{label}".\n\nText: "{text}"\n\n'
                 "Does the description fit the end of this text? Answer Yes or No.")


def heldout_texts(work_dir: Path) -> list:
    """Text the default space's spans never came from: its held-out rows and the bundled examples."""
    _, held = split_heldout(default_rows(work_dir, TrainSpaceArgs.max_tokens))
    return row_items(held) + load_example("ifeval_heldout") + load_example("brown_unseen")


def build_cases(space, texts: list, n_features: int, per_class: int, seed: int) -> list[dict]:
    """Per sampled feature: ``per_class`` activating and non-activating held-out spans."""
    tok = space.reader.tokenizer
    thr = space.threshold.per_latent
    pos: dict[int, list] = {}
    fired = np.zeros((len(texts), space.d_sae), bool)  # 8192 x ~1k booleans: small enough here
    tokens: list[list[int]] = []
    for chunk in space.iter_peaks(texts, show_progress=True, desc="Held-out peaks"):
        base = len(tokens)
        tokens += chunk.tokens
        acts = chunk.acts
        for i in range(acts.n_texts):
            lo, hi = acts.indptr[i], acts.indptr[i + 1]
            fired[base + i, acts.indices[lo:hi]] = True
            for f, v, p in zip(acts.indices[lo:hi], acts.values[lo:hi], chunk.peaks[lo:hi]):
                if v > thr[f]:
                    pos.setdefault(int(f), []).append((float(v), base + i, int(p)))
    rng = random.Random(seed)
    eligible = sorted(f for f, hits in pos.items() if len(hits) >= per_class and space.fact(f).get("top_spans"))
    cases = []
    for f in sorted(rng.sample(eligible, min(n_features, len(eligible)))):
        hits = sorted(pos[f], reverse=True)[:per_class]
        quiet = [t for t in range(len(texts)) if not fired[t, f] and len(tokens[t]) >= 4]
        spans = []
        for _, t, p in hits:
            spans.append({"text": tok.decode(tokens[t][max(0, p - SPAN_TOKENS + 1) : p + 1]), "label": 1})
        for t in rng.sample(quiet, per_class):
            end = rng.randrange(min(len(tokens[t]), SPAN_TOKENS) - 1, len(tokens[t]))
            spans.append({"text": tok.decode(tokens[t][max(0, end - SPAN_TOKENS + 1) : end + 1]), "label": 0})
        cases.append({"feature": f, "summary": space.fact(f)["summary"], "spans": spans})
    return cases


def _peak_words(summary: str) -> list[str]:
    return [w for w in re.findall(r'"([^"]+)" \(\d+/\d+\)', summary.split("; context:")[0]) if w.strip()]


def keyword_scores(summary: str, spans: list[dict], rng: random.Random) -> list[float]:
    words = _peak_words(summary)
    out = []
    for s in spans:
        text = s["text"].lower()
        hit = any(re.search(rf"(?<![a-z0-9]){re.escape(w)}", text) if w[0].isalnum() else w in text for w in words)
        out.append(float(hit) + rng.random() * 1e-3)
    return out


def llm_scores(generator, label: str, spans: list[dict]) -> list[float]:
    out = []
    for s in spans:
        yes, no = generator.score(_SCORE_PROMPT.format(label=label, text=s["text"].replace("\n", " ")), ["Yes", "No"])
        out.append(yes - no)
    return out


def accuracy(scores: list[float], labels: list[int]) -> float:
    """Share right when the top half by score is called activating (classes are balanced)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    called = np.zeros(len(scores), int)
    called[order[: len(scores) // 2]] = 1
    return float((called == np.asarray(labels)).mean())


def interval(per_feature: list[float], seed: int, n: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    arr = np.asarray(per_feature)
    means = [arr[rng.integers(0, len(arr), len(arr))].mean() for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--features", type=int, default=100)
    p.add_argument("--per-class", type=int, default=5)
    p.add_argument("--generator", default="local")
    p.add_argument("--work-dir", default=".work/train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".work/label_quality.json")
    args = p.parse_args()
    space = get_feature_space(None, dtype="float32")
    gen = get_generator(args.generator)
    cases = build_cases(space, heldout_texts(Path(args.work_dir)), args.features, args.per_class, args.seed)
    labels = explain_features(space, [c["feature"] for c in cases], gen, show_progress=True)
    rng = random.Random(args.seed)
    rows = []
    for c in cases:
        truth = [s["label"] for s in c["spans"]]
        llm_label = labels[c["feature"]]
        row = {"feature": c["feature"], "summary": c["summary"], "llm_label": llm_label["explanation"],
               "llm_verified": llm_label["verified"],
               "summary_keyword": accuracy(keyword_scores(c["summary"], c["spans"], rng), truth),
               "summary_llm": accuracy(llm_scores(gen, c["summary"], c["spans"]), truth)}
        if llm_label["explanation"] != CANNOT_TELL:
            row["llm_llm"] = accuracy(llm_scores(gen, llm_label["explanation"], c["spans"]), truth)
        rows.append(row)
    figures = {}
    for key, name in (("summary_keyword", "LLM-free summary, keyword scorer"),
                      ("summary_llm", f"LLM-free summary, {gen.name} scorer"),
                      ("llm_llm", f"LLM explanation ({gen.name}), {gen.name} scorer")):
        vals = [r[key] for r in rows if key in r]
        if vals:
            lo, hi = interval(vals, args.seed)
            figures[name] = {"accuracy": round(float(np.mean(vals)), 3), "ci95": [round(lo, 3), round(hi, 3)],
                             "features": len(vals)}
    verified = [r for r in rows if r["llm_verified"]]
    figures["LLM explanations confirmed by the check pass"] = f"{len(verified)} of {len(rows)}"
    if verified:
        figures["accuracy of confirmed LLM explanations"] = round(float(np.mean([r["llm_llm"] for r in verified])), 3)
    Path(args.out).write_text(json.dumps({"figures": figures, "rows": rows}, indent=2, ensure_ascii=False))
    print(f"{len(rows)} features, {args.per_class} activating + {args.per_class} non-activating held-out spans each "
          "(chance = 0.5)")
    print("| label, scorer | accuracy | 95% interval (features resampled) | features |")
    print("|---|---:|---:|---:|")
    for name, f in figures.items():
        if isinstance(f, dict):
            print(f"| {name} | {f['accuracy']} | {f['ci95'][0]}–{f['ci95'][1]} | {f['features']} |")
        else:
            print(f"| {name} | {f} | | |")


if __name__ == "__main__":
    main()
