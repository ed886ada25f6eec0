"""Pytest fixtures for real HTTP servers on loopback: ``transformers serve`` and small misbehaving ones.

Owns: starting and stopping the servers the generator tests talk to, with no mocks: a real
``transformers serve`` of the embedded default LM (``tserve``), tiny ``http.server`` endpoints
that answer slowly, with garbage, with 503 then success, or with 400, an echo endpoint, and a
port nothing listens on. Must not: know about fac's generators (the tests do).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

FAKE_MODEL = "fake-model"
"""Model id the small servers list at ``/v1/models`` and accept."""


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def completion_body(content: str) -> dict:
    """A minimal, valid OpenAI chat-completion answer."""
    return {
        "id": "fake", "object": "chat.completion", "created": 0, "model": FAKE_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


# --------------------------------------------------------------------------------------------
# transformers serve


def answers(port: int, path: str = "/health") -> bool:
    """Whether a loopback server on ``port`` answers ``GET path`` with 200."""
    # http.client, not urllib: urllib would route loopback through a configured HTTP proxy.
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def tserve(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A real ``transformers serve`` of the dequantised default LM: yields ``(base_url, model_id)``.

    One thread (as fast as two here, much faster when the box is busy), offline, no continuous
    batching (slower on CPU). The port opens once the model is loaded, ~5-7 s after start.
    """
    from fac_metric.space.models import default_lm_dir

    model_dir = str(default_lm_dir())
    port = free_port()
    log = tmp_path_factory.mktemp("tserve") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", model_dir, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while not answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {proc.returncode}" if proc.returncode is not None else "not healthy after 120 s"
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"transformers serve {why}; log tail:\n{tail}")
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1", model_dir
    finally:
        proc.terminate()  # SIGTERM lets in-flight requests finish, then exits (~2 s)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------
# Small endpoints with scripted behaviour

Respond = Callable[[int, dict], tuple]
"""Given the 1-based number of a chat request and its JSON body: ``(status, body, seconds to wait
first)``, optionally with a 4th item, a dict of extra response headers. ``body`` may also be
:data:`RESET` (the connection is reset instead of answered) or a :class:`Trickle`."""

RESET = object()
"""A body that makes the server reset the connection (TCP RST) instead of answering."""


@dataclass(frozen=True)
class Trickle:
    """A body sent one byte every ``every`` seconds (its full length announced up front)."""

    body: bytes
    every: float


@dataclass
class FakeEndpoint:
    """A running scripted endpoint: its base URL, the chat requests it received (JSON bodies) and
    their headers (lower-cased names), in arrival order."""

    url: str
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping for a slow answer must not delay teardown

    def handle_error(self, request, client_address) -> None:
        pass  # the client hung up first (timeout tests): expected, not worth a traceback


def start_endpoint(respond: Respond, models: list[str]) -> tuple[_Server, FakeEndpoint]:
    """Serve ``respond`` on a loopback port in a daemon thread; stop with ``server.shutdown()``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in models]}).encode())
            else:
                self._send(404, b'{"detail":"not found"}')

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with lock:
                endpoint.requests.append(payload)
                endpoint.headers.append({k.lower(): v for k, v in self.headers.items()})
                number = len(endpoint.requests)
            status, body, delay, *extra = respond(number, payload)
            time.sleep(delay)
            if body is RESET:
                # SO_LINGER 0: close() sends RST, what a crashed proxy or a killed server gives.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(extra[0] if extra else {})}.items():
                self.send_header(name, value)
            whole = body.body if isinstance(body, Trickle) else body
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            if isinstance(body, Trickle):
                for k in range(len(whole)):
                    self.wfile.write(whole[k:k + 1])
                    self.wfile.flush()
                    time.sleep(body.every)
            else:
                self.wfile.write(whole)

    server = _Server(("127.0.0.1", 0), Handler)
    endpoint = FakeEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, endpoint


@contextmanager
def _stopped_after(start_server: Callable[..., tuple[_Server, Any]]) -> Iterator[Callable[..., Any]]:
    """``start_server`` as a factory whose servers are all stopped when the block ends."""
    servers: list[_Server] = []

    def start(*args: Any, **kwargs: Any) -> Any:
        server, handle = start_server(*args, **kwargs)
        servers.append(server)
        return handle

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def fake_endpoint() -> Iterator[Callable[..., FakeEndpoint]]:
    """Factory: ``fake_endpoint(respond, models=[FAKE_MODEL])`` starts a scripted endpoint, stopped after the test."""
    with _stopped_after(lambda respond, models=None: start_endpoint(respond, [FAKE_MODEL] if models is None
                                                                     else models)) as start:
        yield start


def _ok(content: str) -> tuple[int, bytes, float]:
    return 200, json.dumps(completion_body(content)).encode(), 0.0


def _user_text(payload: dict) -> str:
    return payload["messages"][-1]["content"]


@pytest.fixture
def slow_endpoint(fake_endpoint) -> FakeEndpoint:
    """Answers correctly, but only after 3 s: longer than the 1 s timeout the tests use."""
    return fake_endpoint(lambda number, payload: (200, json.dumps(completion_body("late")).encode(), 3.0))


@pytest.fixture
def garbage_endpoint(fake_endpoint) -> FakeEndpoint:
    """200 with no chat completion: for user text 'json' ``{"foo": 1}``, 'empty' an empty text, else non-JSON."""
    bodies = {"json": b'{"foo": 1}', "empty": json.dumps(completion_body("")).encode()}
    return fake_endpoint(lambda number, payload: (200, bodies.get(_user_text(payload), b"<html>oops</html>"), 0.0))


@pytest.fixture
def flaky_endpoint(fake_endpoint) -> FakeEndpoint:
    """503 for the first two chat requests, then a valid completion 'ok'."""
    return fake_endpoint(lambda number, payload: (503, b'{"detail":"overloaded"}', 0.0) if number <= 2 else _ok("ok"))


@pytest.fixture
def bad_request_endpoint(fake_endpoint) -> FakeEndpoint:
    """400 with a detail, as a server that does not know the requested model answers."""
    return fake_endpoint(lambda number, payload: (400, b'{"detail":"unknown model \'nope\'"}', 0.0))


@pytest.fixture
def echo_endpoint(fake_endpoint) -> FakeEndpoint:
    """Answers each request with its user text; earlier prompts answer later (order tests).

    A user text ``"<k>:..."`` waits ``0.05 * (10 - k)`` s, so completion order is the reverse of input order.
    """

    def respond(number: int, payload: dict) -> tuple[int, bytes, float]:
        text = _user_text(payload)
        status, body, _ = _ok(f"{text}|seed={payload.get('seed')}")
        return status, body, 0.05 * max(0, 10 - int(text.split(":")[0]))

    return fake_endpoint(respond)


@pytest.fixture
def dead_url() -> str:
    """The base URL of a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"


# --------------------------------------------------------------------------------------------
# A fault-injecting proxy

FAULTS = ("reset", "503", "429", "trickle", "truncated", "empty", "non-utf8", "no-choices", "slow")
"""What :func:`fault_proxy` can do to a request instead of forwarding it."""


@dataclass
class FaultProxy:
    """A proxy in front of an upstream endpoint: the faults it injected and the requests it
    forwarded (each upstream answer is a paid call: ``forwarded`` counts them, per seed)."""

    url: str
    injected: list[str] = field(default_factory=list)
    forwarded: list[dict] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    """The upstream's answer bodies, in the order of ``forwarded``."""
    endpoint: FakeEndpoint | None = None


def _fault(kind: str, timeout_hint: float) -> tuple:
    ok = json.dumps(completion_body("never seen")).encode()
    return {
        "reset": (200, RESET, 0.0),
        "503": (503, b'{"detail":"overloaded"}', 0.0),
        "429": (429, b'{"detail":"slow down"}', 0.0, {"Retry-After": "0"}),
        "trickle": (200, Trickle(ok, timeout_hint / 4), 0.0),  # the whole body would take ~len(ok)/4 timeouts
        "truncated": (200, ok[: len(ok) // 2], 0.0),
        "empty": (200, json.dumps(completion_body("")).encode(), 0.0),
        "non-utf8": (200, b'{"choices": [{"message": {"content": "caf\xe9"}}]}', 0.0),
        "no-choices": (200, b'{"object": "error"}', 0.0),
        "slow": (200, ok, timeout_hint * 2),
    }[kind]


def start_fault_proxy(upstream: str, plan: dict[int, str], timeout_hint: float = 1.0) -> tuple[_Server, FaultProxy]:
    """A proxy that answers chat request ``n`` (1-based) with the fault ``plan.get(n)`` if there is
    one, else forwards it to ``upstream`` (``http.client``, so no configured HTTP proxy is used)
    and relays the answer. Stop it with ``server.shutdown()``."""
    from urllib.parse import urlparse

    target = urlparse(upstream)
    proxy = FaultProxy("")
    lock = threading.Lock()

    def respond(number: int, payload: dict) -> tuple:
        if number in plan:
            with lock:
                proxy.injected.append(plan[number])
            return _fault(plan[number], timeout_hint)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        conn.request("POST", f"{target.path.rstrip('/')}/chat/completions", body=json.dumps(payload),
                     headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        body = answer.read()
        with lock:
            proxy.forwarded.append(payload)
            proxy.answers.append(body)
        return answer.status, body, 0.0

    server, proxy.endpoint = start_endpoint(respond, [FAKE_MODEL])
    proxy.url = proxy.endpoint.url
    return server, proxy


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``fault_proxy(upstream_url, plan, timeout_hint=1.0)`` (see :func:`start_fault_proxy`),
    stopped after the test."""
    with _stopped_after(start_fault_proxy) as start:
        yield start
