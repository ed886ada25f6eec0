"""Endpoint faults and credentials: every fault a loopback proxy injects is survived or reported
clearly, no answered call is paid for twice, and no secret reaches a server it is not for or
anything printed. Real servers on loopback (``tests/servers.py``), no model: these run in seconds.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import pytest

from fac_metric.llm import GeneratorError, HTTPGenerator
from fac_metric.llm.http import api_key_for, public_url, redact
from tests.servers import FAKE_MODEL, FAULTS, completion_body


def _echo(number: int, payload: dict) -> tuple:
    """The upstream: answers each prompt with its text and seed (a paid call, counted at the proxy)."""
    return 200, json.dumps(completion_body(f"{payload['messages'][-1]['content']}|{payload['seed']}")).encode(), 0.0


def test_every_fault_kind_is_survived_and_each_answer_paid_once(fake_endpoint, fault_proxy):
    """One fault of each kind (reset, 503, 429, a trickling body, truncated JSON, an empty
    completion, non-UTF-8, no choices, a slow answer) before the upstream is reached: every
    completion still arrives, right, and the upstream answered each exactly once."""
    upstream = fake_endpoint(_echo)
    proxy = fault_proxy(upstream.url, {k + 1: kind for k, kind in enumerate(FAULTS)}, timeout_hint=1.0)
    gen = HTTPGenerator(proxy.url, model=FAKE_MODEL, timeout=1.0, max_retries=len(FAULTS), backoff=0.0, concurrency=1)
    out = gen.generate(["a", "b"], n=2, seed=5)
    assert proxy.injected == list(FAULTS)
    seeds = [r["seed"] for r in proxy.forwarded]
    assert [[t.split("|")[0] for t in row] for row in out] == [["a", "a"], ["b", "b"]]
    assert len(seeds) == len(set(seeds)) == 4 and gen.stats.retries == len(FAULTS) and gen.stats.calls == 4


def test_a_trickling_server_is_cut_off_at_the_total_deadline(fake_endpoint, fault_proxy):
    """Item 7: one byte every 0.25 s would take a minute; the request ends at timeout=1.5."""
    proxy = fault_proxy(fake_endpoint(_echo).url, {1: "trickle"}, timeout_hint=1.0)
    gen = HTTPGenerator(proxy.url, model=FAKE_MODEL, timeout=1.5, max_retries=0)
    start = time.monotonic()
    assert gen.generate(["Hi"], errors="none") == [[None]]
    assert time.monotonic() - start < 5  # before the fix: as long as the server kept trickling


def test_retry_after_is_honoured(fake_endpoint):
    """Item 9: a 429 with ``Retry-After: 1`` is retried after 1 s, not after the 0.01 s backoff."""
    arrivals: list[float] = []

    def respond(number: int, payload: dict) -> tuple:
        arrivals.append(time.monotonic())
        if number == 1:
            return 429, b'{"detail": "rate limited"}', 0.0, {"Retry-After": "1"}
        return _echo(number, payload)

    gen = HTTPGenerator(fake_endpoint(respond).url, model=FAKE_MODEL, max_retries=2, backoff=0.01)
    assert gen.generate(["Hi"], seed=1)[0][0].startswith("Hi|")
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.95


def test_an_answered_completion_is_kept_when_its_sibling_fails(fake_endpoint):
    """Item 9: of a prompt's two completions one fails for good; the other is handed over as it
    arrives, and asking again for the failed one alone asks for nothing else."""
    bad_seed: list[int] = []

    def respond(number: int, payload: dict) -> tuple:
        if payload["seed"] in bad_seed:
            return 400, b'{"detail": "no"}', 0.0
        return _echo(number, payload)

    endpoint = fake_endpoint(respond)
    gen = HTTPGenerator(endpoint.url, model=FAKE_MODEL, max_retries=0, concurrency=1)
    seeds = [[11, 12]]
    bad_seed.append(12)
    seen: list[tuple] = []
    out = gen.complete(["p"], seeds, errors="none", on_answer=lambda i, j, text: seen.append((i, j, text)))
    assert out == [["p|11", None]] and sorted(seen) == [(0, 0, "p|11"), (0, 1, None)]
    bad_seed.clear()
    assert gen.complete(["p"], [[12]]) == [["p|12"]]
    assert [r["seed"] for r in endpoint.requests] == [11, 12, 12]


def test_a_dead_endpoint_trips_the_breaker(fake_endpoint):
    """Item 8: after ``max_failures`` completions in a row fail, generation stops with a clear
    message, instead of trying every remaining prompt (hours with the old defaults)."""
    endpoint = fake_endpoint(lambda number, payload: (500, b'{"detail": "down"}', 0.0))
    gen = HTTPGenerator(endpoint.url, model=FAKE_MODEL, max_retries=0, max_failures=3, concurrency=1)
    with pytest.raises(GeneratorError, match=r"3 completions failed in a row, the last: .*HTTP 500.*Taken for dead"):
        gen.generate([f"p{k}" for k in range(20)], errors="none")
    assert len(endpoint.requests) == 3


def test_a_server_dying_mid_run_keeps_what_it_answered(fake_endpoint):
    """The server goes away after two answers: those two reach ``on_answer``, then the breaker stops the run."""
    from tests.servers import RESET

    alive = threading.Event()
    alive.set()

    def respond(number: int, payload: dict) -> tuple:
        return _echo(number, payload) if alive.is_set() else (200, RESET, 0.0)

    gen = HTTPGenerator(fake_endpoint(respond).url, model=FAKE_MODEL, max_retries=1, backoff=0.0, max_failures=2,
                        concurrency=1)
    kept: list[str] = []

    def on_answer(i: int, j: int, text: str | None) -> None:
        if text is not None:
            kept.append(text)
            if len(kept) == 2:
                alive.clear()

    with pytest.raises(GeneratorError, match="2 completions failed in a row.*connection failed"):
        gen.generate([f"p{k}" for k in range(6)], errors="none", on_answer=on_answer)
    assert [t.split("|")[0] for t in kept] == ["p0", "p1"]


def test_the_hub_token_goes_only_to_hub_hosts(fake_endpoint, monkeypatch):
    """Item 10: with only ``HF_TOKEN`` set, a loopback endpoint gets the placeholder, not the token."""
    for name in ("FAC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    endpoint = fake_endpoint(_echo)
    HTTPGenerator(endpoint.url, model=FAKE_MODEL).generate(["Hi"])
    assert endpoint.headers[0]["authorization"] == "Bearer EMPTY"
    assert api_key_for("https://router.huggingface.co/v1") == ("hf_" + "x" * 30, "HF_TOKEN")
    assert api_key_for("https://huggingface.co.attacker.example/v1") == (None, None)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    assert api_key_for("http://127.0.0.1:1/v1") == ("sk-other", "OPENAI_API_KEY")


def test_a_server_echoing_credentials_does_not_get_them_printed(fake_endpoint):
    """Item 10: a 401 whose body echoes the request's headers; the error shows no key."""
    key = "sk-live-" + "k" * 24

    def respond(number: int, payload: dict) -> tuple:
        return 401, json.dumps({"detail": "bad key", "headers": endpoint.headers[-1]}).encode(), 0.0

    endpoint = fake_endpoint(respond)
    gen = HTTPGenerator(endpoint.url, model=FAKE_MODEL, api_key=key)
    with pytest.raises(GeneratorError) as caught:
        gen.generate(["Hi"])
    message = str(caught.value)
    assert "HTTP 401" in message and key not in message and "k" * 24 not in message and "***" in message
    assert redact("Authorization: Basic Ym9iOnB3") == "Authorization: Basic ***"


def test_url_credentials_are_sent_as_basic_auth_and_never_stored(fake_endpoint):
    """Item 10: ``user:password@`` in the URL is basic auth for the server, and absent from the
    generator's name (what rows' ``fac_generator`` and reports record) and its messages."""
    endpoint = fake_endpoint(_echo)
    url = endpoint.url.replace("http://", "http://bob:s3cret-pw@")
    gen = HTTPGenerator(url, model=FAKE_MODEL)
    gen.generate(["Hi"])
    assert endpoint.headers[0]["authorization"] == "Basic " + base64.b64encode(b"bob:s3cret-pw").decode()
    assert "s3cret" not in gen.name and "bob" not in gen.name and "s3cret" not in repr(gen)
    assert public_url(url) == endpoint.url


# ------------------------------------------------------------------------------------------------
# Through `fac augment`: the breaker and the run lock, on a few texts (encoding takes seconds)


@pytest.fixture(scope="module")
def tiny_files(brown_texts, anchor_texts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    for name, texts in (("data", brown_texts[:4]), ("anchor", anchor_texts[:10])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return folder


def _augment(files, cache, generator: str, *extra: str) -> list[str]:
    return ["augment", str(files / "data.jsonl"), "--anchor", str(files / "anchor.jsonl"), "-o",
            str(cache / "out.jsonl"), "--cache-dir", str(cache), "--generator", generator, "--generator-model",
            FAKE_MODEL, "--max-features", "5", "--quiet", *extra]


def test_fac_augment_stops_on_a_dead_endpoint_and_says_so(tiny_files, fake_endpoint, tmp_path, capsys):
    """Item 8: --max-failures 3 --max-retries 0 against an endpoint that only answers 500: exit 2
    with the breaker's message after 3 failures (plus what was in flight: 4 requests run at once),
    not after trying every feature (and no output file)."""
    from fac_datasets_ext.cli import main

    endpoint = fake_endpoint(lambda number, payload: (500, b'{"detail": "down"}', 0.0))
    assert main(_augment(tiny_files, tmp_path, endpoint.url, "--max-failures", "3", "--max-retries", "0",
                         "--timeout", "5")) == 2
    err = capsys.readouterr().err
    assert re.search(r"[3-6] completions failed in a row, the last: .*HTTP 500", err) and "Traceback" not in err
    assert 3 <= len(endpoint.requests) <= 3 + 3 and not (tmp_path / "out.jsonl").exists()


def test_a_second_run_on_the_same_folder_is_refused_and_a_killed_holder_frees_it(tiny_files, fake_endpoint, tmp_path):
    """Item 6: while a run holds its folder, the same run is refused before it encodes or calls
    anything; a holder killed with SIGKILL leaves no stale lock."""
    import os
    import signal
    import subprocess
    import sys

    import fac_datasets_ext
    from fac_datasets_ext.io import load_rows
    from fac_datasets_ext.runlock import RunBusyError, RunLock

    endpoint = fake_endpoint(_echo)
    gen = HTTPGenerator(endpoint.url, model=FAKE_MODEL)
    kwargs = dict(max_calls=0, generator=gen, cache_dir=tmp_path, show_progress=False)
    data, anchor = load_rows(tiny_files / "data.jsonl"), load_rows(tiny_files / "anchor.jsonl")
    run_dir = fac_datasets_ext.augment(data, anchor, **kwargs).run_dir
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from fac_datasets_ext.runlock import RunLock; "
                               f"lock = RunLock({str(run_dir)!r}).acquire(); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError, match=rf"already running \(pid {holder.pid}\)"):
            fac_datasets_ext.augment(data, anchor, **kwargs)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with RunLock(run_dir):  # the OS dropped the dead holder's lock
        pass
    assert fac_datasets_ext.augment(data, anchor, **kwargs).run_dir == run_dir and not endpoint.requests
