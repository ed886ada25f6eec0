"""The local backend: sample from a causal LM in this process (see :mod:`fac_metric.llm.base`)."""

from __future__ import annotations

import inspect
import os
from typing import Sequence

import torch

from fac_metric.errors import FacInputError
from fac_metric.llm.base import Generator, GeneratorError, OnAnswer, Prompt, Sampling, _chats


class LocalGenerator(Generator):
    """Sample from a causal LM in this process, with its chat template.

    ``model``: ``None`` (the embedded SmolLM2-135M-Instruct), a local folder or a Hub id, loaded
    by ``fac_metric.space.models.load_lm``. ``device``: ``None`` picks CUDA when available, else CPU.
    Rows are batched ``batch_size`` at a time with left padding; each row samples with its own
    ``torch.Generator``, so a prompt's completions do not depend on which prompts share its batch.
    Nothing here fails transiently, so ``errors`` has no effect (a real error always raises).

    Why an own sampling loop and not ``model.generate``: ``generate`` takes no RNG (no
    ``generator`` parameter; an unknown keyword is refused as an unused model kwarg) and draws every
    row's next token with one ``torch.multinomial(probs, num_samples=1)`` on the global RNG
    (transformers 5.24, ``generation/utils.py``, ``_sample``), so a row's sample would depend on
    which rows share its batch and on earlier calls. A ``LogitsProcessor`` only returns scores; one
    that drew each row's token with its own ``torch.Generator`` and set every other logit to
    ``-inf`` could work around that, but it would redo this loop's temperature and top-p beside
    ``generate``'s own warpers (whose top-p cut, ascending ``cumsum <= 1 - top_p``, differs from this
    one at the boundary), so it is no simpler and could change samples already journaled.
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
                  errors: str, on_answer: OnAnswer | None) -> list[list[str | None]]:
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
            for i, j in batch:
                self._answered(i, j, out[i][j], on_answer)
            self._raise_if_dead()
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
