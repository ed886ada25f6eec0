"""Load: `fac score` memory at 10k vs 100k texts, `add_batch` over many texts, threads on one module.

    python benchmarks/load.py                               # the issue's sizes: hours on 2 cores
    python benchmarks/load.py --arms score                  # fac score, 10,000 vs 100,000 texts
    python benchmarks/load.py --arms add_batch --add-n 200000
    python benchmarks/load.py --arms threads                # 8 threads x compute() on one module
    python benchmarks/load.py --quick                       # every arm at a small size (minutes)

Every arm runs in a fresh child process, and its peak resident memory is the kernel's count for
that child (``wait4``'s ``ru_maxrss``), so arms do not see each other's memory. Texts are short
(``--words`` words), distinct and deterministic: the bundled examples in turn, each behind its
own number, the word window shifted on later passes (``span_memory.make_texts``).

- ``score``: ``fac score DATA --anchor ifeval_anchor --quiet`` (match coverage, the default) on
  each of ``--score-n`` texts. Target: the largest run's peak RSS within 20% of the smallest's
  (streaming: memory does not grow with the data), and every text counted.
- ``add_batch``: ``evaluate.load`` the module, ``add_batch`` ``--add-n`` texts 1,000 at a time,
  then ``compute(anchor=...)``. Where ``--add-n`` equals one of ``--score-n``, its FAC must equal
  that ``fac score`` run's (the same texts through the other front door).
- ``threads``: one loaded module, ``--threads`` threads each ``compute(data=its own subset)`` at
  once; every result must equal the same call made alone (evaluate keeps one accumulation per
  module: before the module's lock, concurrent calls read each other's files and failed).

Prints one JSON object per arm, then a summary with the checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from span_memory import make_texts  # noqa: E402  (this folder's helper: distinct short texts)

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SCORE_TARGET = 0.20


def _write_texts(path: Path, n: int, words: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for text in make_texts(0, n, words):
            f.write(json.dumps({"text": text}) + "\n")
    return path


def _run_measured(command: list[str]) -> tuple[int, float, float, str]:
    """Run ``command``; its exit code, wall seconds, peak RSS in MB (the kernel's, for that child) and stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_chunks: list[str] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))
    err_reader = threading.Thread(target=proc.stderr.read)  # drained so the child never blocks on it
    reader.start(), err_reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(), err_reader.join()
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024, "".join(out_chunks)


def arm_score(folder: Path, n: int, words: int) -> dict:
    from fac_metric.examples import example_path

    data = _write_texts(folder / f"data-{n}.jsonl", n, words)
    out = folder / f"score-{n}"
    code, wall, peak, _ = _run_measured([sys.executable, "-m", "fac_datasets_ext.cli", "score", str(data), "--anchor",
                                         str(example_path("ifeval_anchor")), "--out", str(out), "--quiet"])
    if code != 0:
        raise SystemExit(f"fac score on {n} texts exited {code}")
    result = json.loads((out / "result.json").read_text())
    return {"arm": "score", "texts": n, "exit": code, "wall_s": round(wall, 1), "texts_per_s": round(n / wall, 1),
            "peak_rss_mb": round(peak, 1), "n_texts_counted": result.get("n_texts"), "fac": result.get("fac"),
            "binary_fac": result.get("binary_fac")}


def child_add_batch(n: int, words: int) -> None:
    import evaluate

    import fac_metric
    from fac_metric.examples import load_example

    module = evaluate.load(fac_metric.MODULE_PATH)
    texts = make_texts(0, n, words)
    t0 = time.perf_counter()
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == 1000:
            module.add_batch(data=batch)
            batch = []
    if batch:
        module.add_batch(data=batch)
    added = time.perf_counter() - t0
    result = module.compute(anchor=load_example("ifeval_anchor"))
    print(json.dumps({"add_batch_s": round(added, 1), "compute_s": round(time.perf_counter() - t0 - added, 1),
                      "fac": result["fac"], "binary_fac": result["binary_fac"]}))


def arm_add_batch(n: int, words: int) -> dict:
    code, wall, peak, out = _run_measured([sys.executable, __file__, "--child-add-batch", str(n), "--words", str(words)])
    if code != 0:
        raise SystemExit(f"add_batch over {n} texts exited {code}")
    return {"arm": "add_batch", "texts": n, "exit": code, "wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1),
            **json.loads(out.strip().splitlines()[-1])}


def child_threads(n_threads: int, per_thread: int, words: int) -> None:
    import evaluate

    import fac_metric
    from fac_metric.examples import load_example

    module = evaluate.load(fac_metric.MODULE_PATH)
    anchor = load_example("ifeval_anchor")[:50]
    subsets = [list(make_texts(i * per_thread, (i + 1) * per_thread + i, words)) for i in range(n_threads)]
    module.compute(data=subsets[0][:2], anchor=anchor[:2])  # loads the space: not part of either timing
    t0 = time.perf_counter()
    alone = [module.compute(data=s, anchor=anchor) for s in subsets]
    serial_s = time.perf_counter() - t0
    together: list = [None] * n_threads

    def run(i: int) -> None:
        try:
            together[i] = module.compute(data=subsets[i], anchor=anchor)
        except Exception as err:  # noqa: BLE001 - what a thread raised is the finding
            together[i] = repr(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threaded_s = time.perf_counter() - t0
    print(json.dumps({"threads": n_threads, "texts_per_thread": [len(s) for s in subsets],
                      "serial_s": round(serial_s, 1), "threaded_s": round(threaded_s, 1),
                      "errors": [r for r in together if isinstance(r, str)],
                      "equal_to_alone": sum(a == b for a, b in zip(alone, together)),
                      "distinct_results": len({json.dumps(r, sort_keys=True, default=str) for r in alone})}))


def arm_threads(n_threads: int, per_thread: int, words: int) -> dict:
    code, wall, peak, out = _run_measured([sys.executable, __file__, "--child-threads", str(n_threads),
                                           "--per-thread", str(per_thread), "--words", str(words)])
    if code != 0:
        raise SystemExit(f"threads arm exited {code}")
    return {"arm": "threads", "exit": code, "wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1),
            **json.loads(out.strip().splitlines()[-1])}


def summarise(rows: list[dict]) -> dict:
    """The checks over the arms that ran: each is True, False, or absent when its arm did not run."""
    checks: dict = {}
    scores = sorted((r for r in rows if r["arm"] == "score"), key=lambda r: r["texts"])
    if len(scores) >= 2:
        small, large = scores[0], scores[-1]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        checks["score_peak_ratio"] = round(ratio, 3)
        checks["score_peak_growth_mb"] = round(large["peak_rss_mb"] - small["peak_rss_mb"], 1)
        checks["score_memory_bounded"] = ratio <= 1 + SCORE_TARGET
    if scores:
        checks["score_every_text_counted"] = all(r["n_texts_counted"] == r["texts"] for r in scores)
    by_n = {r["texts"]: r for r in scores}
    for r in rows:
        if r["arm"] == "add_batch" and r["texts"] in by_n:
            checks["add_batch_fac_equals_score"] = r["fac"] == by_n[r["texts"]]["fac"]
        if r["arm"] == "threads":
            checks["threads_all_equal_alone"] = not r["errors"] and r["equal_to_alone"] == r["threads"]
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", choices=("score", "add_batch", "threads"),
                        default=["score", "add_batch", "threads"])
    parser.add_argument("--score-n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--add-n", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=40)
    parser.add_argument("--words", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="score 100 vs 1,000 texts, add_batch 100, 8 x 5 texts")
    parser.add_argument("--child-add-batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_add_batch is not None:
        return child_add_batch(args.child_add_batch, args.words)
    if args.child_threads is not None:
        return child_threads(args.child_threads, args.per_thread, args.words)
    if args.quick:
        args.score_n, args.add_n, args.per_thread = [100, 1000], 100, 5
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arm in args.arms:
            if arm == "score":
                new = [arm_score(Path(tmp), n, args.words) for n in args.score_n]
            elif arm == "add_batch":
                new = [arm_add_batch(args.add_n, args.words)]
            else:
                new = [arm_threads(args.threads, args.per_thread, args.words)]
            for row in new:
                print(json.dumps(row), flush=True)
            rows += new
    print(json.dumps({"checks": summarise(rows)}, indent=2))


if __name__ == "__main__":
    main()
