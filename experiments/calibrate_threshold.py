"""Choose the default δ: how FAC discriminates on the bundled examples as δ varies.

    python experiments/calibrate_threshold.py [--feature-space DIR]

For each δ (relative to each latent's scale) and each statistical relevance mode (``contrast``
against the shipped background, the default; ``all`` non-generic anchor features) it prints:
- FAC of 60 held-out IFEval prompts (same task) and of 60 unseen Brown paragraphs (unrelated)
  against the 300-prompt IFEval anchor, and their gap;
- FAC of a 10-prompt sample of the anchor (must stay well below 1: no saturation);
- the number of relevant features.
Texts are encoded once; profiles at each δ come from the same activations.
"""

from __future__ import annotations

import argparse
import json

from fac_metric import Scorer, get_feature_space, load_example


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--feature-space")
    p.add_argument("--deltas", default="0.25,0.5,0.75,1.0,1.25,1.5,2.0")
    p.add_argument("--modes", default="contrast,all")
    args = p.parse_args()
    space = get_feature_space(args.feature_space)
    anchor, held, brown = load_example("ifeval_anchor"), load_example("ifeval_heldout"), load_example("brown_unseen")
    acts = {name: space.encode(texts, show_progress=False)
            for name, texts in {"anchor": anchor, "held": held[:60], "brown": brown[:60]}.items()}
    rows = []
    for mode in args.modes.split(","):
        for delta in map(float, args.deltas.split(",")):
            scorer = Scorer(space, threshold=delta, relevance=mode)  # encode once, score at every δ
            prof = {k: scorer.profile(a) for k, a in acts.items()}
            ten = scorer.profile(acts["anchor"].select(range(10)))
            relevant = scorer.relevant(prof["anchor"])
            same, other, small = (scorer.fac(p, prof["anchor"], relevant) for p in (prof["held"], prof["brown"], ten))
            rows.append({"mode": mode, "delta": delta, "relevant": same.n_reference, "fac_same_task": round(same.fac, 3),
                         "fac_unrelated": round(other.fac, 3), "gap": round(same.fac - other.fac, 3),
                         "fac_10_anchor_texts": round(small.fac, 3)})
    print("| relevance | δ | relevant features | FAC same task (60) | FAC unrelated (60) | gap | FAC 10 anchor texts |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['delta']} | {r['relevant']} | {r['fac_same_task']} | {r['fac_unrelated']} | {r['gap']} "
              f"| {r['fac_10_anchor_texts']} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
