"""The HTTP backend: an OpenAI-compatible ``/v1/chat/completions`` server (see :mod:`fac_metric.llm.base`).

Owns: requests through huggingface_hub's shared HTTP session, each with a total deadline,
retries (honouring ``Retry-After``), a circuit breaker for a dead endpoint, and keeping
credentials to where they belong (the Hub token to Hub hosts; URL passwords and keys redacted
from everything printed or stored)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import urlparse, urlunparse

from fac_metric.errors import FacInputError
from fac_metric.llm.base import API_KEY_ENV, Generator, GeneratorError, OnAnswer, Sampling

_T = TypeVar("_T")

# huggingface_hub refuses every request, loopback included, while HF_HUB_OFFLINE=1: the event hook
# of its shared session (which we use, for the user's proxies and client factory) calls
# `constants.is_offline_mode()`. Flipping `constants.HF_HUB_OFFLINE` would be process-wide: any Hub download another
# thread makes meanwhile would go online, and holding a lock for the whole request would serialise
# our own concurrent requests. Instead `is_offline_mode` is wrapped once to answer False only
# inside `_endpoint_call()`: a ContextVar is per thread (each worker sets its own), so the
# exception covers exactly the requests we send to the user's endpoint and nothing else.
_ENDPOINT_CALL: ContextVar[bool] = ContextVar("fac_endpoint_call", default=False)
_BYPASS_LOCK = threading.Lock()

# Sent when there is no key: servers without authentication ignore it (vLLM-style servers expect
# one), and no token saved by `hf auth login` is ever picked up and sent to someone else's server.
_NO_KEY = "EMPTY"


def _allow_endpoint_calls_offline() -> None:
    """Install (once) the offline-mode exception for requests made inside ``_endpoint_call()``."""
    from huggingface_hub import constants

    with _BYPASS_LOCK:
        original = constants.is_offline_mode
        if getattr(original, "_fac_endpoint_bypass", False):
            return

        def is_offline_mode() -> bool:
            return False if _ENDPOINT_CALL.get() else original()

        is_offline_mode.__doc__ = original.__doc__
        is_offline_mode._fac_endpoint_bypass = True  # type: ignore[attr-defined]
        constants.is_offline_mode = is_offline_mode


@contextmanager
def _endpoint_call() -> Iterator[None]:
    token = _ENDPOINT_CALL.set(True)
    try:
        yield
    finally:
        _ENDPOINT_CALL.reset(token)


def _request_errors() -> tuple[type[Exception], ...]:
    """What a request to the endpoint raises when the server, the network or the answer is at fault.

    HTTP statuses come as ``_StatusError`` (with the server's headers and body), the total deadline
    as ``_Deadline``, refused or reset connections and per-read timeouts as ``httpx2.TransportError``
    / ``httpx2.TimeoutException``, a body that is not a chat completion as a ``ValueError``
    (``JSONDecodeError``, ``UnicodeDecodeError`` or ours). Anything else is a bug and propagates.
    """
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    return (OfflineModeIsEnabled, _StatusError, _Deadline, httpx2.TransportError, httpx2.DecodingError, ValueError)


class _NotSent(Exception):
    """A request not sent because the circuit breaker had tripped."""


class _BadResponse(ValueError):
    """The server answered 200 with something that is not a chat completion."""


class _StatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, reason: str, text: str, headers: dict[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.reason, self.text, self.headers = status, reason, text, headers


class _Deadline(Exception):
    """The whole request (connect, send, wait, read every byte) took longer than ``timeout``."""


MAX_BODY = 16 * 2**20
"""Bytes of an answer read at most: a server streaming without end is cut off, not buffered."""
MAX_RETRY_AFTER = 120.0
"""Seconds a ``Retry-After`` header can make a retry wait, at most."""
HUB_HOSTS = ("huggingface.co", "hf.co", "hf.space", "huggingface.cloud")
"""Hosts (and their subdomains) the Hub token ``$HF_TOKEN`` may be sent to."""


def is_hub_host(url: str) -> bool:
    """Whether ``url`` is served by Hugging Face (where an ``hf_`` token belongs).

    >>> is_hub_host("https://router.huggingface.co/v1"), is_hub_host("https://x.endpoints.huggingface.cloud/v1")
    (True, True)
    >>> is_hub_host("http://127.0.0.1:8000/v1"), is_hub_host("https://huggingface.co.evil.example/v1")
    (False, False)
    """
    host = (urlparse(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in HUB_HOSTS)


def api_key_for(url: str, api_key: str | None = None) -> tuple[str | None, str | None]:
    """The key sent to ``url`` and where it came from: ``api_key``, else ``$FAC_API_KEY``,
    ``$OPENAI_API_KEY``, and ``$HF_TOKEN`` only for a Hub host (a token of the Hub is never
    sent to anyone else's server); ``(None, None)`` when there is none."""
    if api_key:
        return api_key, "api_key"
    for name in API_KEY_ENV:
        if os.environ.get(name) and (name != "HF_TOKEN" or is_hub_host(url)):
            return os.environ[name], name
    return None, None


def public_url(url: str) -> str:
    """``url`` without ``user:password@`` or a query string: what may be printed, stored in a
    row's provenance or a report, and keyed on.

    >>> public_url("https://bob:s3cret@llm.example.com:8443/v1?api_key=abc")
    'https://llm.example.com:8443/v1'
    """
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host + (f":{parsed.port}" if parsed.port else "")
    return urlunparse((parsed.scheme, netloc, parsed.path, "", "", ""))


_SECRET_PATTERNS = (
    re.compile(r"((?:[Bb]earer|BEARER|Basic)\s+)(?!\*\*\*)[^\s\"',;]+"),  # "basic usage" stays
    re.compile(r"(?i)((?:api[_-]?key|token|authorization|password|secret)[\"']?\s*[:=]\s*[\"']?"
               r"(?:(?:bearer|basic)\s+)?)[^\s\"',;&]+"),
    re.compile(r"\b(hf_|sk-|sk_|gsk_|xai-)[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]+@"),
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with credentials replaced by ``***``: the given ``secrets`` wherever they appear,
    bearer tokens, ``key=``/``token:`` values, Hub and OpenAI-style keys, and URL passwords.

    >>> redact('401: {"detail": "bad Authorization: Bearer hf_abcdefghijklmnop"}')
    '401: {"detail": "bad Authorization: Bearer ***"}'
    >>> redact("see https://bob:pw@host/v1 with key my-own-key", secrets=["my-own-key"])
    'see https://***@host/v1 with key ***'
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    text = _SECRET_PATTERNS[0].sub(r"\1***", text)
    text = _SECRET_PATTERNS[2].sub("***", text)
    return _SECRET_PATTERNS[3].sub(r"\1***@", text)


def retry_after(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), capped at
    ``MAX_RETRY_AFTER``; None without one.

    >>> retry_after({"retry-after": "2"}), retry_after({}), retry_after({"retry-after": "9999"})
    (2.0, None, 120.0)
    """
    from email.utils import parsedate_to_datetime

    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _normalise_base_url(base_url: str) -> str:
    """``http://host:port[/path]`` -> the OpenAI-style root ending in ``/v1``."""
    url = base_url.rstrip("/").removesuffix("/chat/completions")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise GeneratorError(f"{public_url(base_url)!r} is not an http(s) URL of an OpenAI-compatible endpoint")
    return url if url.endswith("/v1") else url + "/v1"


class HTTPGenerator(Generator):
    """Sample from an OpenAI-compatible server (``/v1/chat/completions``), e.g. ``transformers serve``, TGI, vLLM.

    ``model``: the served model id; ``None`` asks ``{base_url}/models`` and takes the only one.
    ``api_key``: default from ``$FAC_API_KEY``, ``$OPENAI_API_KEY``, then ``$HF_TOKEN`` (sent to
    Hugging Face hosts only). Credentials in the URL (``user:pass@``) are sent as basic auth and
    never printed or stored: ``name`` and every message use :func:`public_url`, and server error
    bodies are :func:`redact`-ed. Each request has a total deadline of ``timeout`` seconds
    (connecting, waiting and reading every byte: a server trickling its answer is cut off).
    429, 5xx, network errors, timeouts and malformed answers (not JSON, no choices, an empty
    text) are retried ``max_retries`` times, after ``Retry-After`` when the server sends one,
    else after ``backoff * 2**attempt`` seconds (no jitter: reproducible); other 4xx fail at once.
    After ``max_failures`` completions in a row fail for good, the endpoint is taken for dead and
    ``generate`` raises (``None``: never). ``concurrency`` requests run in parallel; results
    always come back in input order. Works under ``HF_HUB_OFFLINE=1``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
        max_failures: int | None = 8,
    ) -> None:
        super().__init__()
        if timeout <= 0 or max_retries < 0 or backoff < 0 or concurrency < 1 or (max_failures is not None and max_failures < 1):
            raise FacInputError(
                f"need timeout > 0, max_retries >= 0, backoff >= 0, concurrency >= 1, max_failures >= 1 or None; got "
                f"{timeout}, {max_retries}, {backoff}, {concurrency}, {max_failures}"
            )
        parsed = urlparse(base_url)
        self._basic = (parsed.username or "", parsed.password or "") if parsed.username or parsed.password else None
        self.base_url = _normalise_base_url(public_url(base_url))
        self.timeout, self.max_retries, self.backoff, self.concurrency = float(timeout), max_retries, backoff, concurrency
        self.max_failures = max_failures
        key, self.key_source = api_key_for(self.base_url, api_key)
        # A placeholder, not nothing: vLLM-style servers without authentication expect one.
        self._auth = {"authorization": f"Bearer {key or _NO_KEY}"}
        self._secrets = [s for s in (key, *(self._basic or ())) if s]
        _allow_endpoint_calls_offline()
        self.name = self.base_url  # provisional: error messages while the model id is looked up
        self.model = model or self._only_model()
        self.name = f"{self.base_url}|{self.model}"

    def _only_model(self) -> str:
        """The id of the single model ``{base_url}/models`` lists; an error listing them otherwise."""

        def list_models() -> list[str]:
            answer = self._request("GET", f"{self.base_url}/models")
            try:
                return [str(entry["id"]) for entry in answer["data"]]
            except (KeyError, TypeError) as err:
                raise _BadResponse(f"no model list in {str(answer)[:200]!r}") from err

        ids = self._with_retries("listing models", list_models)
        if len(ids) != 1:
            raise GeneratorError(f"{self.base_url} serves {len(ids)} models {ids}: pick one with model=<id>")
        return ids[0]

    def _request(self, method: str, url: str, payload: dict | None = None) -> Any:
        """One request's JSON answer, within a total deadline of ``timeout`` seconds.

        httpx's timeouts bound each read, not the request, so the request runs in a helper thread
        and is abandoned (its connection closed) when the deadline passes. The helper runs in a
        copy of this context, so the offline-mode exception of ``_endpoint_call`` covers it.
        """
        import contextvars

        from huggingface_hub.utils import get_session

        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                auth = self._basic if self._basic else None
                with get_session().stream(method, url, json=payload, headers=self._auth, timeout=self.timeout,
                                          **({"auth": auth} if auth else {})) as response:
                    box["response"] = response
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY or done.is_set():
                            raise _BadResponse(f"answer longer than {MAX_BODY} bytes" if len(body) > MAX_BODY
                                               else "abandoned")
                    box["answer"] = (response.status_code, response.reason_phrase, dict(response.headers), bytes(body))
            except BaseException as err:  # handed to the caller's thread
                box["error"] = err
            finally:
                done.set()

        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(work,), daemon=True, name="fac-http-request").start()
        if not done.wait(self.timeout):
            done.set()
            response = box.get("response")
            if response is not None:
                response.close()
            raise _Deadline(f"no complete answer within timeout={self.timeout:g} s")
        if "error" in box:
            raise box["error"]
        status, reason, headers, body = box["answer"]
        text = body.decode("utf-8")  # UnicodeDecodeError: a malformed answer
        if status >= 400:
            raise _StatusError(status, reason, text, headers)
        return json.loads(text)

    def _generate(self, chats: list[list[dict]], seeds: list[list[int]], sampling: Sampling,
                  errors: str, on_answer: OnAnswer | None) -> list[list[str | None]]:
        out: list[list[str | None]] = [[None] * len(s) for s in seeds]
        jobs = [(i, j) for i in range(len(chats)) for j in range(len(seeds[i]))]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs)), thread_name_prefix="fac-http")
        try:
            futures = {pool.submit(self._job, chats[i], sampling, seeds[i][j]): (i, j) for i, j in jobs}
            for future in as_completed(futures):
                i, j = futures[future]
                try:
                    out[i][j] = future.result()
                except _NotSent:  # the breaker tripped before this one was sent: nothing paid, nothing to hand over
                    continue
                except GeneratorError:
                    self.stats.add(failures=1)
                    if errors == "raise":
                        raise
                    self._answered(i, j, None, on_answer, noted=True)
                else:
                    self._answered(i, j, out[i][j], on_answer, noted=True)
        finally:
            # On a raise, requests not yet sent are dropped; those in flight end within their timeout.
            pool.shutdown(wait=True, cancel_futures=True)
        # Raised only now: answers that were in flight when the breaker tripped were handed over above.
        self._raise_if_dead()
        return out

    def _job(self, chat: list[dict], sampling: Sampling, seed: int) -> str:
        """One completion, counted for the breaker in the worker, where it ends: a worker checks
        the breaker before sending, so no request goes out once it has tripped."""
        if self._dead():
            raise _NotSent
        try:
            text = self._complete(chat, sampling, seed)
        except GeneratorError as err:
            self._note(False, str(err))
            raise
        self._note(True, "")
        return text

    def _complete(self, chat: list[dict], sampling: Sampling, seed: int) -> str:
        """One chat completion (``n`` is ignored by servers, so each completion is its own request)."""
        payload = {"model": self.model, "messages": chat, "max_tokens": sampling.max_new_tokens,
                   "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": seed, "stream": False}

        def request() -> tuple[str, Any]:
            answer = self._request("POST", f"{self.base_url}/chat/completions", payload)
            choices = answer.get("choices") if isinstance(answer, dict) else None
            message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, str) or not content.strip():
                raise _BadResponse(f"no completion text in the answer: {str(answer)[:200]}")
            return content, answer.get("usage")

        content, usage = self._with_retries("chat completion", request)
        usage = usage if isinstance(usage, dict) else {}
        self.stats.add(
            calls=1,
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
        )
        return content

    def _with_retries(self, what: str, request: Callable[[], _T]) -> _T:
        """Run ``request`` until it succeeds, retrying transient failures; raise ``GeneratorError`` otherwise."""
        for attempt in range(self.max_retries + 1):
            try:
                with _endpoint_call():
                    return request()
            except _request_errors() as err:
                why, retryable = self._diagnose(err)
                why = redact(why, self._secrets)
                if not retryable or attempt == self.max_retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise GeneratorError(f"{self.name}: {what} failed{tries}: {why}") from None
                wait = retry_after(err.headers) if isinstance(err, _StatusError) else None
            self.stats.add(retries=1)
            time.sleep(self.backoff * 2**attempt if wait is None else wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _diagnose(self, err: Exception) -> tuple[str, bool]:
        """Why a request failed and whether trying again can help (``err`` is one of ``_request_errors()``)."""
        import httpx2
        from huggingface_hub.errors import OfflineModeIsEnabled

        if isinstance(err, OfflineModeIsEnabled):  # our offline exception did not apply: a bug, not the server
            return f"huggingface_hub refused the request in offline mode ({err})", False
        if isinstance(err, _StatusError):
            detail = " ".join(err.text.split())[:300] or err.reason
            return f"HTTP {err.status}: {detail}", err.status == 429 or err.status >= 500
        if isinstance(err, _Deadline):
            return f"no answer within timeout={self.timeout:g} s", True
        if isinstance(err, httpx2.ConnectError) or isinstance(err, httpx2.ConnectTimeout):
            return f"endpoint {self.base_url} is unreachable ({str(err) or type(err).__name__})", True
        if isinstance(err, httpx2.TimeoutException):
            return f"no answer within timeout={self.timeout:g} s", True
        if isinstance(err, httpx2.TransportError):  # connection reset/closed mid-request (RemoteProtocolError, ReadError)
            return f"connection failed ({type(err).__name__}: {err})", True
        # What is left: non-JSON or non-UTF-8 body, JSON without choices or text (ValueError).
        return f"malformed answer ({type(err).__name__}: {str(err)[:200]})", True


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
