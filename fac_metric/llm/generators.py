"""LLM generator backends: sample chat completions from a local causal LM or an OpenAI-compatible endpoint.

Owns: turning prompts (a string = one user turn, or a list of ``{"role", "content"}`` messages)
into ``n`` seeded completions each, with a local model (``LocalGenerator``: own sampling loop,
batched, batch-invariant) or over HTTP (``HTTPGenerator``: ``/v1/chat/completions`` through
``huggingface_hub.InferenceClient``, concurrent, with timeouts and retries), scoring options by
log-likelihood (local only), and counting requests, failures and retries. Must not: know about
SAEs, features or coverage, or cache results (callers key their caches on ``Generator.name``).

Seeding: completion ``j`` of prompt ``i`` is sampled with ``completion_seed(seed, i, j)`` =
``(seed * 1_000_003 + i * 1009 + j) % 2**31``, so the same prompt list and seed give the same
completions, whatever the batch size (local) or the order requests finish in (HTTP). With one
seed per prompt (``seed=[s0, s1, ...]``) completion ``j`` of prompt ``i`` uses
``completion_seed(s_i, 0, j)``: a prompt's completions then do not depend on the other prompts
of the call at all, which is what lets synthesis batch any set of features, on any process. Servers
reproduce seeds only for requests they run one at a time: use ``concurrency=1`` where that matters.

>>> from fac_metric.llm.generators import get_generator
>>> gen = get_generator("local")
>>> gen.name
'local:smollm2-135m-instruct'
>>> gen.generate(["What is the capital of France?"], temperature=0, max_new_tokens=4)
[['The capital of France']]
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar, Union
from urllib.parse import urlparse

import numpy as np
import torch

from fac_metric.errors import FacError, FacInputError
from fac_metric.space.tokenization import check_collection, check_item

Prompt = Union[str, list[dict]]
"""One prompt: a string (one user turn) or chat messages ``[{"role": ..., "content": ...}]``."""

ERROR_MODES = ("raise", "none")
API_KEY_ENV = ("FAC_API_KEY", "OPENAI_API_KEY", "HF_TOKEN")
"""Environment variables read, in this order, when ``HTTPGenerator`` gets no ``api_key``."""

_T = TypeVar("_T")


class GeneratorError(FacError, RuntimeError):
    """A generator backend cannot be built or a request failed for good (after its retries)."""


@dataclass
class GenerationStats:
    """Counters of one generator, updated thread-safely: read them, do not write them."""

    calls: int = 0
    """Completions answered (one per request; a local batch row counts as one)."""
    failures: int = 0
    """Completions that failed for good (``None`` with ``errors="none"``, or the one raised)."""
    retries: int = 0
    """Requests sent again after a retryable failure (429, 5xx, network, timeout, bad response)."""
    prompt_tokens: int = 0
    """Prompt tokens of answered completions, where the backend reports them."""
    completion_tokens: int = 0
    """Generated tokens of answered completions, where the backend reports them."""

    def __post_init__(self) -> None:
        # Not a dataclass field: dataclasses.asdict/replace stay usable on the counters.
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        """Add to counters atomically, e.g. ``stats.add(calls=1, completion_tokens=12)``."""
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


@dataclass(frozen=True)
class Sampling:
    """Decoding settings shared by every completion of one ``generate`` call."""

    temperature: float
    top_p: float
    max_new_tokens: int


def completion_seed(seed: int, i: int, j: int) -> int:
    """Seed of completion ``j`` of prompt ``i`` (distinct for ``j < 1009``; fits every server's int)."""
    return (seed * 1_000_003 + i * 1009 + j) % 2**31


def _chats(prompts: Sequence[Prompt]) -> list[list[dict]]:
    """Validate prompts and turn each into chat messages (a string becomes one user turn)."""
    check_collection(prompts)
    items = [check_item(p, i) for i, p in enumerate(prompts)]
    return [[{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p] for p in items]


class Generator:
    """Base of the backends: validates arguments, then each backend produces the completions."""

    name: str
    """Stable identity of backend + model, fit for cache keys."""
    supports_scoring: bool = False

    def __init__(self) -> None:
        self.stats = GenerationStats()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int = 1,
        temperature: float = 0.8,
        top_p: float = 0.9,
        max_new_tokens: int = 256,
        seed: int | Sequence[int] = 0,
        errors: str = "raise",
    ) -> list[list[str | None]]:
        """For each prompt, ``n`` completions: the assistant's text, without special tokens.

        Completion ``j`` of prompt ``i`` is seeded by ``completion_seed(seed, i, j)``, or by
        ``completion_seed(seed[i], 0, j)`` when ``seed`` is a list with one seed per prompt;
        ``temperature=0`` decodes greedily. ``errors="raise"``: a completion that still fails
        after its retries raises ``GeneratorError``; ``errors="none"``: it comes back as ``None``
        and counts in ``stats.failures``.
        """
        chats = _chats(prompts)
        if n < 1 or max_new_tokens < 1:
            raise FacInputError(f"n={n} and max_new_tokens={max_new_tokens} must both be at least 1")
        if temperature < 0 or not 0 < top_p <= 1:
            raise FacInputError(f"temperature={temperature} must be >= 0 and top_p={top_p} in (0, 1]")
        if errors not in ERROR_MODES:
            raise FacInputError(f"errors={errors!r} is not one of {ERROR_MODES}")
        if isinstance(seed, (int, np.integer)):
            seeds = [[completion_seed(int(seed), i, j) for j in range(n)] for i in range(len(chats))]
        else:
            per_prompt = [int(s) for s in seed]
            if len(per_prompt) != len(chats):
                raise FacInputError(f"seed has {len(per_prompt)} values for {len(chats)} prompts: pass one per prompt, or one int")
            seeds = [[completion_seed(s, 0, j) for j in range(n)] for s in per_prompt]
        if not chats:
            return []
        return self._generate(chats, seeds, Sampling(float(temperature), float(top_p), int(max_new_tokens)), errors)

    def _generate(self, chats: list[list[dict]], seeds: list[list[int]], sampling: Sampling,
                  errors: str) -> list[list[str | None]]:
        """``len(seeds[i])`` completions of chat ``i``, completion ``j`` sampled with ``seeds[i][j]``."""
        raise NotImplementedError

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Log-likelihood of each option as the assistant's reply to ``prompt`` (sum of token log-probs)."""
        raise GeneratorError(f"{self.name} does not support scoring: use a local model (get_generator('local:<model>'))")


# --------------------------------------------------------------------------------------------
# Local backend


class LocalGenerator(Generator):
    """Sample from a causal LM in this process, with its chat template.

    ``model``: ``None`` (the embedded SmolLM2-135M-Instruct), a local folder or a Hub id, loaded
    by ``fac_metric.space.models.load_lm``. ``device``: ``None`` picks CUDA when available, else CPU.
    Rows are batched ``batch_size`` at a time with left padding; each row samples with its own
    ``torch.Generator``, so a prompt's completions do not depend on which prompts share its batch.
    Nothing here fails transiently, so ``errors`` has no effect (a real error always raises).
    """

    supports_scoring = True

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        batch_size: int = 8,
    ) -> None:
        from fac_metric.space.models import DEFAULT_LM, load_lm

        super().__init__()
        if batch_size < 1:
            raise FacInputError(f"batch_size={batch_size} must be at least 1")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self.model, self.tokenizer = load_lm(model, dtype=dtype, device=self.device)
        # The dtype changes the samples, so it is part of the identity; fp32 (the default) is implied.
        suffix = "" if dtype == torch.float32 else f"@{str(dtype).removeprefix('torch.')}"
        self.name = f"local:{DEFAULT_LM if model is None else os.fspath(model)}{suffix}"
        self._pad_id = self.tokenizer.pad_token_id
        self._stop_ids = self._find_stop_ids()
        # transformers 5.24 renamed the KV-cache argument; an unknown keyword would be swallowed by
        # **kwargs and silently decode without the cache, so ask the signature which one it is.
        forward_args = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        # Only the last position's logits are needed: skips a (batch, length, vocab) prefill tensor.
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}

    def _find_stop_ids(self) -> set[int]:
        """End-of-sequence ids of the generation config and tokenizer, plus ``<|im_end|>`` if in the vocabulary."""
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        im_end = self.tokenizer.get_vocab().get("<|im_end|>")
        if im_end is not None:
            ids.add(im_end)
        return ids

    def _encode(self, chat: list[dict]) -> list[int]:
        return list(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False))

    def _generate(self, chats: list[list[dict]], seeds: list[list[int]], sampling: Sampling,
                  errors: str) -> list[list[str | None]]:
        ids = [self._encode(chat) for chat in chats]
        # Rows of similar length share a batch (less padding); the order cannot change any result.
        rows = sorted(((i, j) for i in range(len(chats)) for j in range(len(seeds[i]))), key=lambda r: len(ids[r[0]]))
        out: list[list[str | None]] = [[None] * len(s) for s in seeds]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            new_tokens = self._sample([ids[i] for i, _ in batch], [seeds[i][j] for i, j in batch], sampling)
            for (i, j), tokens in zip(batch, new_tokens):
                out[i][j] = self.tokenizer.decode(tokens, skip_special_tokens=True)
            self.stats.add(
                calls=len(batch),
                prompt_tokens=sum(len(ids[i]) for i, _ in batch),
                completion_tokens=sum(len(t) for t in new_tokens),
            )
        return out

    @torch.inference_mode()
    def _sample(self, prompts: list[list[int]], seeds: list[int], sampling: Sampling) -> list[list[int]]:
        """Decode one left-padded batch with a KV cache; return each row's tokens before its stop token."""
        width = max(map(len, prompts))
        input_ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        # Left padding: real tokens start at position 0 in every row, as they would unpadded.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        new_tokens: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        step_ids, cache = input_ids, None
        for _ in range(sampling.max_new_tokens):
            out = self.model(
                input_ids=step_ids, attention_mask=mask, position_ids=positions,
                use_cache=True, **self._last_logits, **{self._cache_arg: cache},
            )
            cache = getattr(out, self._cache_arg)
            picked = self._pick(out.logits[:, -1, :].float(), generators, sampling)
            for row, token in enumerate(picked):
                if done[row]:
                    continue
                if token in self._stop_ids:
                    done[row] = True
                else:
                    new_tokens[row].append(token)
            if all(done):
                break
            # Finished rows keep decoding pad tokens (ignored) so the batch stays rectangular.
            step_ids = torch.tensor([[self._pad_id if d else t] for d, t in zip(done, picked)], device=self.device)
            mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
            positions = positions[:, -1:] + 1
        return new_tokens

    @staticmethod
    def _pick(logits: torch.Tensor, generators: list[torch.Generator], sampling: Sampling) -> list[int]:
        """Next token per row: argmax at temperature 0, else top-p sampling with the row's own generator."""
        if sampling.temperature == 0:
            return logits.argmax(-1).tolist()
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest head of the distribution whose mass reaches top_p (the top token always).
        outside = sorted_probs.cumsum(-1) - sorted_probs >= sampling.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        return [
            int(order[row, torch.multinomial(sorted_probs[row], 1, generator=g)])
            for row, g in enumerate(generators)
        ]

    @torch.inference_mode()
    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Log-likelihood of each option as the assistant's reply to ``prompt`` (sum of token log-probs).

        The option's tokens follow the rendered prompt (with the generation prompt), as the model
        would produce them; the end-of-turn token is not included, so options are compared as
        openings of a reply.
        """
        prefix = self._encode(_chats([prompt])[0])
        if isinstance(options, str) or not options:
            raise FacInputError("options must be a non-empty list of strings")
        option_ids = []
        for k, option in enumerate(options):
            ids = self.tokenizer(option, add_special_tokens=False).input_ids if isinstance(option, str) else []
            if not ids:
                raise FacInputError(f"option {k} ({option!r}) is not a non-empty string")
            option_ids.append(ids)
        scores: list[float] = []
        for start in range(0, len(option_ids), self.batch_size):
            scores += self._score_batch(prefix, option_ids[start : start + self.batch_size])
        return scores

    def _score_batch(self, prefix: list[int], options: list[list[int]]) -> list[float]:
        """One right-padded forward over prefix + option per row; sum the option tokens' log-probs."""
        seqs = [prefix + ids for ids in options]
        width = max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        token_lp = logprobs.gather(-1, input_ids[:, 1:, None].to(self.device)).squeeze(-1).cpu()
        # Token t is predicted at position t - 1: the option spans positions len(prefix)-1 onwards.
        return [float(token_lp[row, len(prefix) - 1 : len(seq) - 1].sum()) for row, seq in enumerate(seqs)]


# --------------------------------------------------------------------------------------------
# HTTP backend

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


# --------------------------------------------------------------------------------------------


def get_generator(spec: str | os.PathLike | Generator | None = None, *, model: str | None = None, **kwargs: Any) -> Generator:
    """A generator from a spec.

    ``None`` or ``"local"``: the embedded default LM (or ``model``) in this process;
    ``"local:<folder or Hub id>"`` or an existing folder: that LM in this process;
    ``"http://..."`` / ``"https://..."``: an OpenAI-compatible endpoint serving ``model`` (or its
    only model); a ``Generator``: returned as is. ``kwargs`` go to the backend's constructor.
    """
    if isinstance(spec, Generator):
        return spec
    if spec is None or spec == "local":
        return LocalGenerator(model, **kwargs)
    text = os.fspath(spec)
    if text.startswith("local:") and text[len("local:") :]:
        return LocalGenerator(text[len("local:") :], **kwargs)
    if text.startswith(("http://", "https://")):
        return HTTPGenerator(text, model=model, **kwargs)
    if Path(text).is_dir():
        return LocalGenerator(text, **kwargs)
    raise GeneratorError(
        f"unknown generator {text!r}: use 'local', 'local:<folder or Hub id>', an existing model folder, "
        f"or the http(s):// URL of an OpenAI-compatible endpoint"
    )
