"""Generator backends against real servers on loopback (fixtures in tests/servers.py) and the local LM."""

from __future__ import annotations

import os
import time

import pytest

from fac_metric.errors import FacError, FacInputError
from fac_metric.llm import (
    GenerationStats,
    Generator,
    GeneratorError,
    HTTPGenerator,
    completion_seed,
    get_generator,
)
from tests.servers import FAKE_MODEL

FAST = dict(timeout=5.0, max_retries=1, backoff=0.01)
"""Client settings for the scripted endpoints: fail fast."""


# --------------------------------------------------------------------------------------------
# HTTP: a real `transformers serve`


def test_http_generates_under_offline_mode(tserve):
    from huggingface_hub import constants

    base_url, model_id = tserve
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.is_offline_mode()
    gen = HTTPGenerator(base_url, concurrency=2)  # the model id is discovered at /v1/models
    assert gen.model == model_id and gen.name == f"{base_url}|{model_id}" and not gen.supports_scoring
    out = gen.generate(["Name a fruit.", "Name a colour."], n=2, max_new_tokens=6, seed=1)
    assert [len(row) for row in out] == [2, 2]
    assert all(isinstance(text, str) and text.strip() for row in out for text in row)
    assert (gen.stats.calls, gen.stats.failures, gen.stats.retries) == (4, 0, 0)
    assert gen.stats.completion_tokens > 0
    # The exception to offline mode is scoped to our requests: the Hub stays off limits.
    assert constants.is_offline_mode()


def test_http_same_seed_same_text_when_sequential(tserve):
    base_url, model_id = tserve
    gen = HTTPGenerator(base_url, model=model_id, concurrency=1)
    first = gen.generate(["Write one word about the sea."], temperature=1.0, max_new_tokens=8, seed=7)
    assert gen.generate(["Write one word about the sea."], temperature=1.0, max_new_tokens=8, seed=7) == first


def test_http_unknown_model_fails_at_once_with_server_detail(tserve):
    base_url, _ = tserve
    gen = HTTPGenerator(base_url, model="nope", max_retries=3, backoff=5.0)
    start = time.monotonic()
    with pytest.raises(GeneratorError, match=r"HTTP 400: .*nope"):
        gen.generate(["Hi"], max_new_tokens=4)
    assert time.monotonic() - start < 2 and gen.stats.retries == 0 and gen.stats.failures == 1


def test_http_does_not_score(tserve):
    gen = HTTPGenerator(tserve[0], model=tserve[1])
    with pytest.raises(GeneratorError, match="does not support scoring"):
        gen.score("Hi", ["Hello"])


# --------------------------------------------------------------------------------------------
# HTTP: scripted endpoints


def test_http_keeps_input_order_and_seeds(echo_endpoint):
    gen = HTTPGenerator(echo_endpoint.url, model=FAKE_MODEL, concurrency=4, **FAST)
    prompts = [f"{k}:prompt" for k in range(6)]
    out = gen.generate(prompts, n=2, seed=3)
    assert out == [[f"{p}|seed={completion_seed(3, i, j)}" for j in range(2)] for i, p in enumerate(prompts)]
    assert gen.generate(prompts[:2], seed=[7, 9]) == [[f"{p}|seed={completion_seed(s, 0, 0)}"] for p, s in zip(prompts, (7, 9))]
    # Answers came back in reverse: the order above is the input order, not the completion order.
    assert gen.stats.calls == 14 and all(r["model"] == FAKE_MODEL and r["max_tokens"] == 256 for r in echo_endpoint.requests)


def test_http_timeout_raises_or_gives_none(slow_endpoint):
    gen = HTTPGenerator(slow_endpoint.url, model=FAKE_MODEL, timeout=1.0, max_retries=1, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(GeneratorError, match=r"after 2 attempts: no answer within timeout=1 s"):
        gen.generate(["Hi"], max_new_tokens=4)
    assert time.monotonic() - start < 4
    assert gen.generate(["Hi"], max_new_tokens=4, errors="none") == [[None]]
    assert (gen.stats.calls, gen.stats.failures, gen.stats.retries) == (0, 2, 2)


def test_http_garbage_counts_as_failure(garbage_endpoint):
    gen = HTTPGenerator(garbage_endpoint.url, model=FAKE_MODEL, concurrency=1, **FAST)
    assert gen.generate(["html", "json", "empty"], errors="none") == [[None], [None], [None]]
    assert (gen.stats.calls, gen.stats.failures, gen.stats.retries) == (0, 3, 3)
    assert len(garbage_endpoint.requests) == 6
    with pytest.raises(GeneratorError, match="malformed answer"):
        gen.generate(["json"])


def test_http_retries_503_then_succeeds(flaky_endpoint):
    gen = HTTPGenerator(flaky_endpoint.url, model=FAKE_MODEL, timeout=5.0, max_retries=3, backoff=0.01)
    assert gen.generate(["Hi"]) == [["ok"]]
    assert (gen.stats.calls, gen.stats.failures, gen.stats.retries) == (1, 0, 2)
    assert len(flaky_endpoint.requests) == 3


def test_http_400_is_not_retried(bad_request_endpoint):
    gen = HTTPGenerator(bad_request_endpoint.url, model=FAKE_MODEL, timeout=5.0, max_retries=3, backoff=5.0)
    with pytest.raises(GeneratorError, match=r"HTTP 400: .*unknown model 'nope'"):
        gen.generate(["Hi"])
    assert len(bad_request_endpoint.requests) == 1 and gen.stats.retries == 0


def test_http_dead_endpoint_is_unreachable(dead_url):
    start = time.monotonic()
    with pytest.raises(GeneratorError, match="unreachable"):
        HTTPGenerator(dead_url, **FAST)  # looking up the model id already fails
    gen = HTTPGenerator(dead_url, model=FAKE_MODEL, **FAST)
    with pytest.raises(GeneratorError, match=r"after 2 attempts: endpoint .* is unreachable"):
        gen.generate(["Hi"])
    assert time.monotonic() - start < 3 and gen.stats.retries == 1


def test_http_model_must_be_unique(fake_endpoint):
    endpoint = fake_endpoint(lambda number, payload: (500, b"", 0.0), models=["a", "b"])
    with pytest.raises(GeneratorError, match=r"serves 2 models \['a', 'b'\]"):
        HTTPGenerator(endpoint.url, **FAST)


# --------------------------------------------------------------------------------------------
# Local


@pytest.fixture(scope="module")
def local(local_generator):
    return local_generator


PROMPTS = ["Name a fruit.", "Tell me a long story about a dragon who lives in a mountain and guards gold.", "Hi"]


def test_local_sampling_is_seeded(local):
    kwargs = dict(n=3, temperature=1.0, max_new_tokens=8)
    first = local.generate(["Write a short poem about the sea."], seed=0, **kwargs)
    assert local.generate(["Write a short poem about the sea."], seed=0, **kwargs) == first
    assert len(set(first[0])) > 1  # completions j = 0, 1, 2 have their own seeds
    assert local.generate(["Write a short poem about the sea."], seed=1, **kwargs) != first


def test_local_batch_invariance(local):
    # fp32 on CPU: a row's logits barely move with padding and batch-mates; on these short outputs
    # neither greedy nor sampled tokens change (checked with batch sizes 1 and 8).
    for n, temperature in ((1, 0.0), (2, 1.0)):
        kwargs = dict(n=n, temperature=temperature, max_new_tokens=6, seed=5)
        batched = local.generate(PROMPTS, **kwargs)
        local.batch_size = 1
        try:
            alone = local.generate(PROMPTS, **kwargs)
            first_alone = local.generate(PROMPTS[:1], **kwargs)  # same index 0, so the same seeds
        finally:
            local.batch_size = 8
        assert batched == alone and batched[0] == first_alone[0]


def test_per_prompt_seeds_make_a_prompt_independent_of_its_call(local):
    # One seed per prompt: a prompt's samples are the same alone, at another index, or among others.
    kwargs = dict(n=2, temperature=1.0, max_new_tokens=6)
    together = local.generate(PROMPTS, seed=[11, 12, 13], **kwargs)
    assert local.generate([PROMPTS[2], PROMPTS[0]], seed=[13, 11], **kwargs) == [together[2], together[0]]
    with pytest.raises(FacInputError, match="one per prompt"):
        local.generate(PROMPTS, seed=[1, 2], **kwargs)


def test_local_score_prefers_the_likely_answer(local):
    scores = local.score("What is the capital of France? Answer with one word.", ["Paris", "Banana"])
    assert len(scores) == 2 and all(s < 0 for s in scores) and scores[0] > scores[1] + 3
    with pytest.raises(FacInputError):
        local.score("Hi", [""])


def test_local_stats_and_validation(local):
    before = local.stats.calls
    assert local.generate([], max_new_tokens=2) == []
    assert local.generate([[{"role": "user", "content": "Hi"}]], n=2, max_new_tokens=2) and local.stats.calls == before + 2
    for bad in (dict(prompts="Hi"), dict(prompts=["Hi"], n=0), dict(prompts=["Hi"], errors="ignore"), dict(prompts=[None])):
        with pytest.raises(FacInputError):
            local.generate(**bad)


# --------------------------------------------------------------------------------------------
# Dispatch


def test_get_generator_dispatch(local, echo_endpoint):
    from fac_metric.space.models import default_lm_dir

    assert get_generator(local) is local
    http = get_generator(echo_endpoint.url)  # the only model is discovered
    assert isinstance(http, HTTPGenerator) and http.name == f"{echo_endpoint.url}|{FAKE_MODEL}"
    folder = str(default_lm_dir())
    assert get_generator(f"local:{folder}").name == f"local:{folder}"
    for spec in ("ftp://example.org", "no-such-folder", "local:"):
        with pytest.raises(GeneratorError, match="unknown generator"):
            get_generator(spec)
    assert issubclass(GeneratorError, FacError) and isinstance(local, Generator) and isinstance(local.stats, GenerationStats)
