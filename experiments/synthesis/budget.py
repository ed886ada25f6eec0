"""FAC Synthesis against its alternatives at equal budget, in the evidence study's task.

    python -m experiments.synthesis.budget                 # 3 seeds, 10 rows per arm (docs/synthesis/budget.json)
    python -m experiments.synthesis.budget --quick         # CI: 1 seed, 3 rows, a few features, no claims

The study task of :mod:`experiments.validity` (is a user request harmful?), its downstream
classifier (logistic regression on the feature space's layer, AUPRC on the test split that no
choice here ever reads) and its pool. A *seed* training set is a narrow one of the study's
design: ``SEED_POSITIVES`` harmful requests from one source (``SEED_SOURCE``; draw ``k`` of its
composition for seed ``k``) plus the study's 300 benign requests. Each arm adds ``--budget``
rows labelled harmful to the seed set, with one embedded generator (SmolLM2-135M-Instruct):

- ``seed only``: nothing added;
- ``unguided``: the same generator asked plainly (``UNGUIDED``), no features, no examples;
- ``self-instruct``: few-shot from the seed set: each call shows 3 random seed requests in the
  same chat form FAC Synthesis uses, so the two differ only in which examples are shown and in
  verification;
- ``FAC Synthesis``: ``augment_with_fac`` with the study's anchor, default settings (two-step
  contrastive, verified, on-task gate);
- ``real``: the same number of real pool requests from the other sources (the upper reference);
- ``unguided, equal calls``: unguided synthesis given as many generator calls as FAC Synthesis
  used for its rows (so more rows): which covers more missing features for the same spend.

Per arm and seed: AUPRC, how many added rows are near copies of an anchor text (half their word
6-grams in one), binary FAC over the anchor's contrast features (the features synthesis
targets) and the share of the seed set's missing features that the arm covers, default FAC
(match), rows added and generator calls. Generated texts are never printed or written: only
counts, ids and scores (the task is harmful requests).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

SEED_SOURCE = "dna_malicious_uses"
SEED_POSITIVES = 10
UNGUIDED = "Write a harmful request a user might send to an AI assistant. Write only the request."
SHOTS = 3
ARMS = ("seed only", "unguided", "self-instruct", "FAC Synthesis", "real", "unguided, equal calls")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _keep(text, seen: set, shown: str = "") -> str | None:
    """A generated request worth adding: non-empty, not seen before, not a copy of its examples."""
    from fac_datasets_ext.dedup import copies, normalise
    from fac_datasets_ext.synthesis import clean_sample

    text = clean_sample(text)
    key = normalise(text)
    if not key or key in seen or (shown and copies(text, shown)):
        return None
    seen.add(key)
    return text


def unguided(gen, budget: int, seed: int, seen: set, calls: int | None = None) -> tuple[list[str], int]:
    """Up to ``budget`` rows from the plain prompt, in at most ``calls`` (default ``3 x budget``) calls."""
    rows, made, limit = [], 0, 3 * budget if calls is None else calls
    while len(rows) < budget and made < limit:
        n = min(budget, limit - made)
        (texts,) = gen.generate([UNGUIDED], n=n, seed=seed * 7919 + made, max_new_tokens=96, errors="none")
        made += n
        rows += [t for t in (_keep(x, seen) for x in texts) if t is not None]
    return rows[:budget], made


def self_instruct(gen, examples: list[str], budget: int, seed: int, seen: set) -> tuple[list[str], int]:
    """Up to ``budget`` rows, each from 3 random seed requests shown as earlier answers."""
    from fac_datasets_ext.prompts import PromptSet, prompt_text

    prompts = PromptSet.load("instruction")
    rng = random.Random(f"self-instruct:{seed}")
    rows, calls = [], 0
    while len(rows) < budget and calls < 3 * budget:
        chats = [prompts.fill("step1", examples=rng.sample(examples, SHOTS)) for _ in range(budget - len(rows))]
        answers = gen.generate(chats, seed=seed * 7919 + calls, max_new_tokens=96, errors="none")
        calls += len(chats)
        for chat, (text,) in zip(chats, answers):
            kept = _keep(text, seen, prompt_text(chat))
            if kept is not None:
                rows.append(kept)
    return rows[:budget], calls


def run(budget: int, seeds: list[int], work: Path, quick: bool = False, study: Path | None = None) -> dict:
    import datasets

    from experiments.validity import encode, sets as sets_mod
    from experiments.validity.downstream import auprc
    from experiments.validity.task import build_task
    from fac_datasets_ext.augmentation import augment
    from fac_datasets_ext.dedup import copies, normalise
    from fac_metric import Scorer, SparseActivations, get_feature_space
    from fac_metric.llm import get_generator

    items = build_task(per_source=20 if quick else None)
    # As the study encodes (its cached encodings are reused); quick: float32, the same on every CPU.
    space = get_feature_space(None, dtype="float32" if quick else "auto")
    ids, texts = [it.id for it in items], [it.text for it in items]
    study = study or Path(".work/validity-quick" if quick else ".work/validity")  # the study's encodings
    acts = encode.sae_activations(space, ids, texts, study, "task")
    resid = encode.residuals(space, ids, texts, study, "task")
    labels = np.array([it.label for it in items])
    test = np.array([i for i, it in enumerate(items) if it.split == "test"])
    anchor = sets_mod.anchor_rows(items)
    designs = [ts for ts in sets_mod.design(items, sizes=(SEED_POSITIVES if not quick else 4,),
                                            n_benign=300 if not quick else 30)
               if ts.composition == f"{SEED_SOURCE}@{SEED_POSITIVES if not quick else 4}"]
    binary = Scorer(space, coverage="binary", show_progress=False)
    match = Scorer(space, show_progress=False)
    anchor_prof = binary.profile(acts.select(anchor), name="anchor")
    chosen_binary, chosen_match = binary.relevant(anchor_prof), match.relevant(anchor_prof)
    gen = get_generator("local")
    out = {"budget": budget, "seeds": seeds, "seed_source": SEED_SOURCE, "n_anchor": len(anchor),
           "n_test": int(len(test)), "runs": []}
    for k in seeds:
        ts = designs[k % len(designs)]
        negatives = [i for i in ts.rows if items[i].label == 0]
        positives = [i for i in ts.rows if items[i].label == 1]
        seen = {normalise(items[i].text) for i in ts.rows}
        seed_prof = binary.profile(acts.select(positives), name="seed")
        seed_missing = set(binary.fac(seed_prof, anchor_prof, chosen_binary).missing)
        taken = set(anchor) | set(ts.rows)
        real_pool = [i for i, it in enumerate(items) if it.split == "pool" and it.label == 1 and i not in taken
                     and it.source != SEED_SOURCE]
        arms: dict[str, tuple[list[str], list[int], int]] = {"seed only": ([], [], 0)}
        start = time.perf_counter()
        rows, calls = unguided(gen, budget, k, set(seen))
        arms["unguided"] = (rows, [], calls)
        rows, calls = self_instruct(gen, [items[i].text for i in positives], budget, k, set(seen))
        arms["self-instruct"] = (rows, [], calls)
        _log(f"seed {k}: unguided and self-instruct in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        data = datasets.Dataset.from_dict({"text": [items[i].text for i in positives]})
        res = augment(data, [items[i].text for i in anchor], budget=budget, seed=k, generator=gen,
                      cache_dir=work / "augment", show_progress=False,
                      **({"max_features": 6} if quick else {}))
        new = [r["text"] for r in res.dataset if r["fac_synthetic"]]
        arms["FAC Synthesis"] = (new, [], res.report["synthesis"]["calls"])
        _log(f"seed {k}: FAC Synthesis {len(new)} rows, {res.report['synthesis']['calls']} calls, "
             f"{time.perf_counter() - start:.0f} s")
        arms["real"] = ([], random.Random(f"real:{k}").sample(real_pool, budget), 0)
        fac_calls = arms["FAC Synthesis"][2]
        rows, calls = unguided(gen, fac_calls, k, set(seen), calls=fac_calls)
        arms["unguided, equal calls"] = (rows, [], calls)
        for arm in ARMS:
            new_texts, real_rows, calls = arms[arm]
            x_new = encode.mean_residuals(space, new_texts) if new_texts else np.zeros((0, resid.shape[1]), resid.dtype)
            rows = negatives + positives + real_rows
            train_x = np.concatenate([resid[rows], x_new])
            train_y = np.concatenate([labels[rows], np.ones(len(new_texts), int)])
            arm_acts = [acts.select(positives + real_rows)]
            if new_texts:
                arm_acts.append(space.encode(new_texts, show_progress=False))
            prof = binary.profile(SparseActivations.concat(arm_acts), name=arm)
            fac_b = binary.fac(prof, anchor_prof, chosen_binary)
            fac_m = match.fac(prof, anchor_prof, chosen_match)
            covered = len(seed_missing - set(fac_b.missing))
            anchor_texts = [items[i].text for i in anchor]
            near_copies = sum(any(copies(t, a) for a in anchor_texts) for t in new_texts)
            out["runs"].append({
                "seed": k, "arm": arm, "seed_set": ts.name, "rows_added": len(new_texts) + len(real_rows),
                "calls": calls, "rows_per_call": (len(new_texts) / calls) if calls else None,
                "auprc": auprc(train_x, train_y, resid[test], labels[test]),
                "binary_fac": fac_b.fac, "fac": fac_m.fac, "seed_missing": len(seed_missing),
                "missing_covered": covered, "missing_covered_share": covered / max(len(seed_missing), 1),
                "missing_covered_per_call": (covered / calls) if calls else None,
                "near_copies_of_anchor": near_copies,
            })
            r = out["runs"][-1]
            _log(f"seed {k} {arm}: AUPRC {r['auprc']:.3f}, binary FAC {r['binary_fac']:.3f}, "
                 f"covered {covered}/{len(seed_missing)} missing, {r['rows_added']} rows, {calls} calls")
    out["summary"] = summarise(out["runs"])
    return out


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds, per arm and figure."""
    out = {}
    for arm in ARMS:
        mine = [r for r in runs if r["arm"] == arm]
        out[arm] = {}
        for key in ("auprc", "binary_fac", "fac", "missing_covered_share", "rows_added", "calls", "rows_per_call",
                    "missing_covered_per_call", "near_copies_of_anchor"):
            vals = [r[key] for r in mine if r[key] is not None]
            out[arm][key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                             "n": len(vals)} if vals else None
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m experiments.synthesis.budget", description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", default=None)
    p.add_argument("--out", default="docs/synthesis/budget.json")
    p.add_argument("--study-work", default=None,
                   help="the validity study's cache of encodings (default .work/validity, or .work/validity-quick)")
    args = p.parse_args(argv)
    budget, seeds = (3, [0]) if args.quick else (args.budget, list(range(args.seeds)))
    work = Path(args.work or (".work/budget-quick" if args.quick else ".work/budget"))
    result = run(budget, seeds, work, quick=args.quick, study=Path(args.study_work) if args.study_work else None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    _log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
