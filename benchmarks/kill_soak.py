"""Kill soak: SIGKILL ``fac augment`` and ``fac score`` at random points, resume, and count what was lost.

``fac augment`` talks to a scripted loopback endpoint through the fault-injecting proxy of
``tests/servers.py`` (a fault on ~1 request in 8, of every kind the proxy knows). Each cycle starts
the command, kills it at a random point (seconds after start: model loading or encoding; or after
1-4 more answers reached the proxy: mid-synthesis), then starts it again, until ``--kills``
kills have landed; a last run finishes. Measured against one uninterrupted run:

- rows lost / duplicated: the final output against the uninterrupted one (byte-identical?);
- answered calls asked again: requests the proxy forwarded whose answer was already in the run's
  journal when the earlier run was killed (the promise: 0);
- calls lost in flight: answers the upstream sent that the killed run never journaled (the
  requests in flight at the kill, at most the generator's concurrency): asked again, paid twice.

``fac score`` is killed at random times over a 600-text scoring; after each kill its ``--out``
must be absent or complete, and the last run's ``result.json`` must equal the uninterrupted one.

    python benchmarks/kill_soak.py --kills 20 --score-kills 5   # ~25 min on 2 CPU cores

Results: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import FAKE_MODEL, FAULTS, completion_body, start_endpoint, start_fault_proxy  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
AUGMENT_ARGS = ["--budget", "6", "--max-features", "24", "--samples-per-feature", "2", "--max-new-tokens", "40",
                "--no-on-task-gate", "--quiet", "--timeout", "2", "--max-retries", "4", "--max-failures", "50"]


def shuffled_answer(number: int, payload: dict) -> tuple:
    """The upstream: the words of the last example the prompt shows (an anchor text that fires
    the feature), shuffled by the request's seed. Deterministic per (prompt, seed), so an
    uninterrupted run and a killed-and-resumed one get the same answers."""
    messages = payload["messages"]
    shown = [m["content"] for m in messages if m["role"] == "assistant"] or [messages[-1]["content"]]
    words = shown[-1].split()
    random.Random(payload["seed"]).shuffle(words)
    text = " ".join(words[:40]) + f" (note {payload['seed'] % 1000})"
    return 200, json.dumps(completion_body(text)).encode(), 0.0


def write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    from fac_metric.examples import load_example

    data, anchor, big = folder / "data.jsonl", folder / "anchor.jsonl", folder / "big.jsonl"
    for path, texts in ((data, load_example("brown_unseen")[:40]), (anchor, load_example("ifeval_anchor")[:60]),
                        (big, (load_example("ifeval_anchor") + load_example("brown_unseen"))[:600])):
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return data, anchor, big


def content(body: bytes) -> str | None:
    try:
        return json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def journaled(cache: Path) -> set[str]:
    """Every answer text in the run folders' journals (what a resumed run must not ask again)."""
    texts: set[str] = set()
    for path in cache.glob("*/journal/journal-*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                value = json.loads(line)["value"]
            except (ValueError, KeyError):
                continue  # the torn last line of a killed run: what the journal itself skips
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    texts.add(v)
    return texts


def run_until(cmd: list[str], stop, timeout: float = 1800) -> tuple[str, float]:
    """Run ``cmd``; SIGKILL it once ``stop(elapsed)`` is true. ``("killed"|"finished", seconds)``."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        elapsed = time.monotonic() - start
        if stop(elapsed) or elapsed > timeout:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed", elapsed
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return "finished", time.monotonic() - start


def comparable(path: Path, proxy_url: str) -> list[str]:
    """The output's rows with the generator's address as a placeholder: each proxy has its own
    port, which rows record in ``fac_generator`` (written with escaped slashes, so the rows are
    parsed); every other value must match exactly."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    name = f"{proxy_url}|{FAKE_MODEL}"
    return [json.dumps({k: "<proxy>" if k == "fac_generator" and v == name else v for k, v in row.items()},
                       sort_keys=True) for row in rows]


def soak_augment(folder: Path, kills: int, rng: random.Random, seed: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    data, anchor, _ = write_inputs(folder)
    _, upstream = start_endpoint(shuffled_answer, [FAKE_MODEL])

    def command(cache: Path, out: Path, proxy_url: str) -> list[str]:
        return [sys.executable, "-m", "fac_datasets_ext.cli", "augment", str(data), "--anchor", str(anchor),
                "-o", str(out), "--cache-dir", str(cache), "--generator", proxy_url,
                "--generator-model", FAKE_MODEL, "--seed", str(seed), *AUGMENT_ARGS]

    plan = {n: rng.choice(FAULTS) for n in range(1, 5000) if rng.random() < 1 / 8}
    _, ref_proxy = start_fault_proxy(upstream.url, plan, timeout_hint=2.0)
    ref_cache, ref_out = folder / "ref-cache", folder / "ref.jsonl"
    _, ref_seconds = run_until(command(ref_cache, ref_out, ref_proxy.url), lambda t: False)

    _, proxy = start_fault_proxy(upstream.url, plan, timeout_hint=2.0)
    cache, out = folder / "cache", folder / "out.jsonl"
    landed, points, before_kill, asked_again, lost_in_flight = 0, [], [], 0, 0
    answered_earlier: set[str] = set()
    while True:
        start_index = len(proxy.answers)
        if landed < kills:
            if rng.random() < 0.3:
                at = rng.uniform(1.0, 25.0)
                point, stop = f"{at:.1f} s", (lambda t, at=at: t >= at)
            else:
                more = rng.randint(1, 4)
                point, stop = f"+{more} answers", (lambda t, more=more, s=start_index: len(proxy.answers) >= s + more)
        else:
            point, stop = "none", (lambda t: False)
        outcome, _ = run_until(command(cache, out, proxy.url), stop)
        new = [content(b) for b in proxy.answers[start_index:]]
        # Asked again: answers this run was sent that an earlier, killed run had already journaled.
        asked_again += sum(1 for t in new if t in before_kill[-1]) if before_kill else 0
        lost_in_flight += sum(1 for t in new if t in answered_earlier and not (before_kill and t in before_kill[-1]))
        answered_earlier |= {t for t in new if t}
        if outcome == "finished":
            break
        landed += 1
        points.append(point)
        before_kill.append(journaled(cache))
    ref_rows, rows = comparable(ref_out, ref_proxy.url), comparable(out, proxy.url)
    texts = [json.loads(r).get("text") for r in rows]
    return {
        "kills": landed, "kill_points": points, "uninterrupted_seconds": round(ref_seconds, 1),
        "faults_injected": len(proxy.injected) + len(ref_proxy.injected),
        "fault_kinds": sorted(set(proxy.injected) | set(ref_proxy.injected)),
        "calls_uninterrupted": len(ref_proxy.forwarded), "calls_with_kills": len(proxy.forwarded),
        "rows": len(rows), "synthetic_rows": sum(1 for r in rows if json.loads(r).get("fac_synthetic")),
        "rows_lost": len(set(ref_rows) - set(rows)), "rows_duplicated": len(texts) - len(set(texts)),
        "identical_to_uninterrupted": rows == ref_rows,
        "answered_calls_asked_again": asked_again, "calls_lost_in_flight": lost_in_flight,
    }


def soak_score(folder: Path, kills: int, rng: random.Random) -> dict:
    _, anchor, big = write_inputs(folder)

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "fac_datasets_ext.cli", "score", str(big), "--anchor", str(anchor),
                "--out", str(out), "--quiet"]

    ref = folder / "score-ref"
    _, seconds = run_until(command(ref), lambda t: False)
    out, half_written = folder / "score-out", 0
    for _ in range(kills):
        at = rng.uniform(0.5, seconds)
        if run_until(command(out), lambda t, at=at: t >= at)[0] == "finished":
            break
        if out.exists() and (not (out / "result.json").is_file() or
                             (out / "result.json").read_bytes() != (ref / "result.json").read_bytes()):
            half_written += 1
    run_until(command(out), lambda t: False)
    return {"kills": kills, "uninterrupted_seconds": round(seconds, 1), "half_written_reports": half_written,
            "result_identical": (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--score-kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        # Series (each its own seed, so its own rows and calls) until the kills have landed.
        series: list[dict] = []
        while sum(s["kills"] for s in series) < args.kills:
            series.append(soak_augment(Path(tmp) / f"series-{len(series)}", args.kills - sum(s["kills"] for s in series),
                                       rng, seed=args.seed + len(series)))
            print(json.dumps(series[-1]), flush=True)
        total = {k: sum(s[k] for s in series) for k in ("kills", "faults_injected", "calls_uninterrupted",
                                                          "calls_with_kills", "rows", "synthetic_rows", "rows_lost",
                                                          "rows_duplicated", "answered_calls_asked_again",
                                                          "calls_lost_in_flight")}
        total["identical_to_uninterrupted"] = all(s["identical_to_uninterrupted"] for s in series)
        total["fault_kinds"] = sorted({k for s in series for k in s["fault_kinds"]})
        result = {"augment": {"series": len(series), **total}}
        if args.score_kills:
            result["score"] = soak_score(Path(tmp), args.score_kills, rng)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
