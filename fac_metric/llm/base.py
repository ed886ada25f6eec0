"""LLM generator backends: sample chat completions from a local causal LM or an OpenAI-compatible endpoint.

Owns: turning prompts (a string = one user turn, or a list of ``{"role", "content"}`` messages)
into ``n`` seeded completions each, with a local model (``LocalGenerator``: own sampling loop,
batched, batch-invariant) or over HTTP (``HTTPGenerator``: ``/v1/chat/completions`` through huggingface_hub's HTTP session,
concurrent, with total deadlines, retries and a circuit breaker), handing each completion to the
caller as it arrives (``on_answer``: so a caller can journal paid answers one by one), scoring
options by log-likelihood (local only), and counting requests, failures and retries. Must not: know about
SAEs, features or coverage, or cache results (callers key their caches on ``Generator.name``).

Seeding: completion ``j`` of prompt ``i`` is sampled with ``completion_seed(seed, i, j)`` =
``(seed * 1_000_003 + i * 1009 + j) % 2**31``, so the same prompt list and seed give the same
completions, whatever the batch size (local) or the order requests finish in (HTTP). With one
seed per prompt (``seed=[s0, s1, ...]``) completion ``j`` of prompt ``i`` uses
``completion_seed(s_i, 0, j)``: a prompt's completions then do not depend on the other prompts
of the call at all, which is what lets synthesis batch any set of features, on any process. Servers
reproduce seeds only for requests they run one at a time: use ``concurrency=1`` where that matters.

>>> from fac_metric.llm import get_generator
>>> gen = get_generator("local")
>>> gen.name
'local:smollm2-135m-instruct'
>>> gen.generate(["What is the capital of France?"], temperature=0, max_new_tokens=4)
[['The capital of France']]
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from fac_metric.errors import FacError, FacInputError
from fac_metric.space.tokenization import check_collection, check_item

Prompt = Union[str, list[dict]]
"""One prompt: a string (one user turn) or chat messages ``[{"role": ..., "content": ...}]``."""

ERROR_MODES = ("raise", "none")
API_KEY_ENV = ("FAC_API_KEY", "OPENAI_API_KEY", "HF_TOKEN")
"""Environment variables read, in this order, when ``HTTPGenerator`` gets no ``api_key``
(``HF_TOKEN`` only for Hugging Face hosts)."""

OnAnswer = Callable[[int, int, Union[str, None]], None]
"""``on_answer(i, j, text)``: completion ``j`` of prompt ``i`` has arrived (``None``: it failed
for good), called in the caller's thread before the next answer is handed over."""


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
        self._breaker_lock = threading.Lock()
        self._failed_in_a_row = 0
        self._last_failure = ""

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
        on_answer: OnAnswer | None = None,
    ) -> list[list[str | None]]:
        """For each prompt, ``n`` completions: the assistant's text, without special tokens.

        Completion ``j`` of prompt ``i`` is seeded by ``completion_seed(seed, i, j)``, or by
        ``completion_seed(seed[i], 0, j)`` when ``seed`` is a list with one seed per prompt;
        ``temperature=0`` decodes greedily. ``errors="raise"``: a completion that still fails
        after its retries raises ``GeneratorError``; ``errors="none"``: it comes back as ``None``
        and counts in ``stats.failures``. ``on_answer`` sees each completion as it arrives. A
        backend with ``max_failures`` raises ``GeneratorError`` once that many completions in a
        row (across calls) have failed: the endpoint is taken for dead.
        """
        if n < 1:
            raise FacInputError(f"n={n} must be at least 1")
        if isinstance(seed, (int, np.integer)):
            seeds = [[completion_seed(int(seed), i, j) for j in range(n)] for i in range(len(prompts))]
        else:
            per_prompt = [int(s) for s in seed]
            if len(per_prompt) != len(prompts):
                raise FacInputError(f"seed has {len(per_prompt)} values for {len(prompts)} prompts: pass one per prompt, or one int")
            seeds = [[completion_seed(s, 0, j) for j in range(n)] for s in per_prompt]
        return self.complete(prompts, seeds, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                             errors=errors, on_answer=on_answer)

    def complete(
        self,
        prompts: Sequence[Prompt],
        seeds: Sequence[Sequence[int]],
        *,
        temperature: float = 0.8,
        top_p: float = 0.9,
        max_new_tokens: int = 256,
        errors: str = "raise",
        on_answer: OnAnswer | None = None,
    ) -> list[list[str | None]]:
        """Like ``generate``, with each completion's seed given: prompt ``i`` gets one completion
        per seed in ``seeds[i]``. What lets a caller ask again for just the completions it lacks:
        ``complete([p], [[completion_seed(s, 0, 3)]])`` is completion 3 of ``generate([p], n=4, seed=[s])``.
        """
        chats = _chats(prompts)
        if max_new_tokens < 1:
            raise FacInputError(f"max_new_tokens={max_new_tokens} must be at least 1")
        if temperature < 0 or not 0 < top_p <= 1:
            raise FacInputError(f"temperature={temperature} must be >= 0 and top_p={top_p} in (0, 1]")
        if errors not in ERROR_MODES:
            raise FacInputError(f"errors={errors!r} is not one of {ERROR_MODES}")
        if len(seeds) != len(chats) or any(not isinstance(s, Sequence) or not s for s in seeds):
            raise FacInputError(f"seeds needs one non-empty list of seeds per prompt ({len(chats)} prompts)")
        seeds = [[int(x) for x in s] for s in seeds]
        if not chats:
            return []
        return self._generate(chats, seeds, Sampling(float(temperature), float(top_p), int(max_new_tokens)), errors,
                              on_answer)

    def _generate(self, chats: list[list[dict]], seeds: list[list[int]], sampling: Sampling,
                  errors: str, on_answer: OnAnswer | None) -> list[list[str | None]]:
        """``len(seeds[i])`` completions of chat ``i``, completion ``j`` sampled with ``seeds[i][j]``;
        each handed to ``self._answered`` as it arrives."""
        raise NotImplementedError

    max_failures: int | None = None
    """Completions failed in a row after which the backend is taken for dead (None: never)."""

    def _answered(self, i: int, j: int, text: str | None, on_answer: OnAnswer | None, *, noted: bool = False) -> None:
        """Hand one completion to the caller as it arrives, and count it for the circuit breaker
        (``noted``: the backend counted it already, where the request ran)."""
        if on_answer is not None:
            on_answer(i, j, text)
        if not noted:
            self._note(text is not None, "no answer")

    def _note(self, ok: bool, why: str) -> None:
        """Count one completion for the circuit breaker: a success resets the run of failures."""
        with self._breaker_lock:
            self._failed_in_a_row = 0 if ok else self._failed_in_a_row + 1
            if not ok:
                self._last_failure = why

    def _dead(self) -> bool:
        """Whether the breaker has tripped: ``max_failures`` completions in a row failed."""
        return self.max_failures is not None and self._failed_in_a_row >= self.max_failures

    def _raise_if_dead(self) -> None:
        """Raise once the breaker has tripped (after every answer already received was handed over)."""
        if self._dead():
            raise GeneratorError(
                f"{self.name}: {self._failed_in_a_row} completions failed in a row, the last: {self._last_failure}. "
                "Taken for dead: check the endpoint, then run again; answers already received are kept "
                "(a run resumes from its journal)"
            )

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Log-likelihood of each option as the assistant's reply to ``prompt`` (sum of token log-probs)."""
        raise GeneratorError(f"{self.name} does not support scoring: use a local model (get_generator('local:<model>'))")
