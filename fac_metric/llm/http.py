"""The HTTP backend: an OpenAI-compatible ``/v1/chat/completions`` server (see :mod:`fac_metric.llm.base`)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import urlparse

from fac_metric.errors import FacInputError
from fac_metric.llm.base import API_KEY_ENV, Generator, GeneratorError, Prompt, Sampling

_T = TypeVar("_T")

# huggingface_hub refuses every request, loopback included, while HF_HUB_OFFLINE=1: the event hook
# of its shared session calls `constants.is_offline_mode()`, and InferenceClient can only use that
# session. Flipping `constants.HF_HUB_OFFLINE` would be process-wide: any Hub download another
# thread makes meanwhile would go online, and holding a lock for the whole request would serialise
# our own concurrent requests. Instead `is_offline_mode` is wrapped once to answer False only
# inside `_endpoint_call()`: a ContextVar is per thread (each worker sets its own), so the
# exception covers exactly the requests we send to the user's endpoint and nothing else.
_ENDPOINT_CALL: ContextVar[bool] = ContextVar("fac_endpoint_call", default=False)
_BYPASS_LOCK = threading.Lock()

# InferenceClient falls back to the token saved by `hf auth login` when it gets no key, and would
# send it to whatever URL it is given; a placeholder keeps that token to the Hub. Servers without
# authentication ignore it (it is what vLLM-style servers expect when no key is configured).
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

    huggingface_hub 2.4 is built on httpx2 (its errors are not ``httpx.HTTPError``): HTTP statuses
    come as ``HfHubHTTPError`` (``e.response`` holds the server's answer), timeouts as
    ``InferenceTimeoutError`` or ``httpx2.TimeoutException``, refused or reset connections as
    ``httpx2.TransportError`` (``ConnectError``, ``ReadError``, ``RemoteProtocolError``), and a
    body that is not a chat completion as a ``ValueError`` (``JSONDecodeError`` or ours). Anything
    else is a bug and propagates unchanged.
    """
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

    return (OfflineModeIsEnabled, HfHubHTTPError, InferenceTimeoutError, httpx2.TransportError, httpx2.DecodingError, ValueError)


class _BadResponse(ValueError):
    """The server answered 200 with something that is not a chat completion."""


def _normalise_base_url(base_url: str) -> str:
    """``http://host:port[/path]`` -> the OpenAI-style root ending in ``/v1`` (as InferenceClient builds it)."""
    url = base_url.rstrip("/").removesuffix("/chat/completions")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise GeneratorError(f"{base_url!r} is not an http(s) URL of an OpenAI-compatible endpoint")
    return url if url.endswith("/v1") else url + "/v1"


class HTTPGenerator(Generator):
    """Sample from an OpenAI-compatible server (``/v1/chat/completions``), e.g. ``transformers serve``, TGI, vLLM.

    ``model``: the served model id; ``None`` asks ``{base_url}/models`` and takes the only one.
    ``api_key``: default from ``$FAC_API_KEY``, ``$OPENAI_API_KEY``, then ``$HF_TOKEN``. Each
    request times out after ``timeout`` seconds; 429, 5xx, network errors, timeouts and malformed
    answers (not JSON, no choices, an empty text) are retried ``max_retries`` times with backoff ``backoff * 2**attempt`` seconds (no
    jitter: the delays are reproducible), other 4xx fail at once. ``concurrency`` requests run in
    parallel; results always come back in input order. Works under ``HF_HUB_OFFLINE=1``.
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
    ) -> None:
        from huggingface_hub import InferenceClient

        super().__init__()
        if timeout <= 0 or max_retries < 0 or backoff < 0 or concurrency < 1:
            raise FacInputError(
                f"need timeout > 0, max_retries >= 0, backoff >= 0, concurrency >= 1; got "
                f"{timeout}, {max_retries}, {backoff}, {concurrency}"
            )
        self.base_url = _normalise_base_url(base_url)
        self.timeout, self.max_retries, self.backoff, self.concurrency = float(timeout), max_retries, backoff, concurrency
        key = api_key or next((os.environ[v] for v in API_KEY_ENV if os.environ.get(v)), _NO_KEY)
        self._auth = {"authorization": f"Bearer {key}"}
        self._client = InferenceClient(base_url=self.base_url, api_key=key, timeout=self.timeout)
        _allow_endpoint_calls_offline()
        self.name = self.base_url  # provisional: error messages while the model id is looked up
        self.model = model or self._only_model()
        self.name = f"{self.base_url}|{self.model}"

    def _only_model(self) -> str:
        """The id of the single model ``{base_url}/models`` lists; an error listing them otherwise."""
        from huggingface_hub.utils import get_session, hf_raise_for_status

        def list_models() -> list[str]:
            response = get_session().get(f"{self.base_url}/models", headers=self._auth, timeout=self.timeout)
            hf_raise_for_status(response)
            try:
                return [str(entry["id"]) for entry in response.json()["data"]]
            except (KeyError, TypeError) as err:
                raise _BadResponse(f"no model list in {response.text[:200]!r}") from err

        ids = self._with_retries("listing models", list_models)
        if len(ids) != 1:
            raise GeneratorError(f"{self.base_url} serves {len(ids)} models {ids}: pick one with model=<id>")
        return ids[0]

    def _generate(self, chats: list[list[dict]], seeds: list[list[int]], sampling: Sampling,
                  errors: str) -> list[list[str | None]]:
        out: list[list[str | None]] = [[None] * len(s) for s in seeds]
        jobs = [(i, j) for i in range(len(chats)) for j in range(len(seeds[i]))]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs)), thread_name_prefix="fac-http")
        try:
            futures = {pool.submit(self._complete, chats[i], sampling, seeds[i][j]): (i, j) for i, j in jobs}
            for future in as_completed(futures):
                i, j = futures[future]
                try:
                    out[i][j] = future.result()
                except GeneratorError:
                    self.stats.add(failures=1)
                    if errors == "raise":
                        raise
        finally:
            # On a raise, requests not yet sent are dropped; those in flight end within their timeout.
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _complete(self, chat: list[dict], sampling: Sampling, seed: int) -> str:
        """One chat completion (``n`` is ignored by servers, so each completion is its own request)."""

        def request() -> tuple[str, Any]:
            answer = self._client.chat_completion(
                messages=chat, model=self.model, max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature, top_p=sampling.top_p, seed=seed,
            )
            choices = getattr(answer, "choices", None)
            message = getattr(choices[0], "message", None) if choices else None
            content = getattr(message, "content", None)
            if not isinstance(content, str) or not content.strip():
                raise _BadResponse(f"no completion text in the answer: {str(answer)[:200]}")
            return content, getattr(answer, "usage", None)

        content, usage = self._with_retries("chat completion", request)
        self.stats.add(
            calls=1,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
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
                if not retryable or attempt == self.max_retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise GeneratorError(f"{self.name}: {what} failed{tries}: {why}") from err
            self.stats.add(retries=1)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _diagnose(self, err: Exception) -> tuple[str, bool]:
        """Why a request failed and whether trying again can help (``err`` is one of ``_request_errors()``)."""
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

        if isinstance(err, OfflineModeIsEnabled):  # our offline exception did not apply: a bug, not the server
            return f"huggingface_hub refused the request in offline mode ({err})", False
        if isinstance(err, HfHubHTTPError):
            status = err.response.status_code
            detail = (err.response.text or "").strip()[:500] or err.response.reason_phrase
            return f"HTTP {status}: {detail}", status == 429 or status >= 500
        # InferenceClient re-raises every httpx2 timeout as InferenceTimeoutError, the original as its cause.
        if isinstance(err, (httpx2.ConnectError, httpx2.ConnectTimeout)) or isinstance(err.__cause__, httpx2.ConnectTimeout):
            return f"endpoint {self.base_url} is unreachable ({str(err) or type(err).__name__})", True
        if isinstance(err, (InferenceTimeoutError, httpx2.TimeoutException)):
            return f"no answer within timeout={self.timeout:g} s", True
        if isinstance(err, httpx2.TransportError):  # connection reset/closed mid-request (RemoteProtocolError, ReadError)
            return f"connection failed ({type(err).__name__}: {err})", True
        # What is left: non-JSON body, JSON without choices or text (ValueError), undecodable body.
        return f"malformed answer ({type(err).__name__}: {str(err)[:200]})", True
