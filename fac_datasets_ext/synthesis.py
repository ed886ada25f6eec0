"""FAC Synthesis: the paper's two-step contrastive loop, with verification, dedup and a journal.

Owns, per missing feature (a ``Target``): step 1, show the generator the anchor texts in which the
feature fires most as few-shot examples of the task (never the feature, its activations or the
mechanics: see :mod:`~fac_datasets_ext.prompts`) and draw 2 candidates, encode both, the stronger
is the good example and the weaker the bad one (an on-task candidate that fires above δ is
preferred as the good one; if there is none, the anchor texts stand alone, as in the paper's
fallback); step 2, show the examples with the good one last (and the bad one as a
counter-example, for a template with a ``<weak>`` turn), and draw ``samples_per_feature`` samples; verify, keeping a sample only if its
target feature fires above δ and the on-task gate (:class:`~fac_datasets_ext.ontask.TaskGate`)
finds it reads like the task; dedup, dropping a sample that repeats the data or an earlier new
sample (same normalised text, or nearly the same active features); then the generator writes
the fields a new row needs (a response, a chosen/rejected pair).

Work goes in *rounds* of ``features_per_round`` features, in the order of the missing list; a
round's features are spread over the processes (``Ranks``), their attempts gathered, and the
accept/dedup decisions made in feature order on every process, so 1 or N processes give the
same rows. Every generator answer is in the ``Journal`` before it is used: a killed run,
restarted, asks the generator only for what it had not answered. Every random draw is seeded by
(seed, feature, step), never by batch or process. Must not: read datasets or compute FAC
(``augmentation.py`` does).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from fac_metric import FacInputError, Threshold
from fac_metric.llm import completion_seed
from fac_metric.meaning import Span, TopSpans, render_spans

from .dedup import DedupIndex, copies, normalise
from .distributed import Ranks
from .journal import Journal, answer_key, attempt_key, response_key
from .ontask import TaskGate
from .prompts import Prompt, PromptSet, prompt_text
from .shapes import DataShape

STEP1_CANDIDATES = 2
"""Candidates drawn in step 1 to form the contrastive pair (the paper draws 2)."""


@dataclass(frozen=True)
class Settings:
    """How synthesis samples and filters (the run directory is keyed by all of these)."""

    samples_per_feature: int = 2
    """Step-2 samples per feature (the paper: 1-2; more adds little)."""
    temperature: float = 0.8
    top_p: float = 0.9
    max_new_tokens: int = 96
    """Tokens per synthesised sample."""
    response_tokens: int = 160
    """Tokens per generated response field (output, reply, chosen, rejected)."""
    features_per_round: int = 8
    """Features handled between two gathers; fixed, so rounds are the same for any process count."""
    near_duplicate: float = 0.85
    """Jaccard similarity of active-feature sets at or above which a sample is a near-duplicate."""
    contrastive: bool = True
    """False: one step with ``samples_per_feature + 2`` draws and no contrastive pair (the benchmark's baseline)."""
    on_task: bool = True
    """Keep only samples the on-task gate accepts (:class:`~fac_datasets_ext.ontask.TaskGate`), where one is given."""

    def __post_init__(self) -> None:
        if not 1 <= self.samples_per_feature <= 16:
            raise FacInputError(f"samples_per_feature={self.samples_per_feature} must be between 1 and 16")
        if self.features_per_round < 1 or self.max_new_tokens < 1 or self.response_tokens < 1:
            raise FacInputError("features_per_round, max_new_tokens and response_tokens must be at least 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise FacInputError(f"temperature={self.temperature} must be >= 0 and top_p={self.top_p} in (0, 1]")
        if not 0 < self.near_duplicate <= 1:
            raise FacInputError(f"near_duplicate={self.near_duplicate} must be in (0, 1]")

    @property
    def draws(self) -> int:
        """Generator calls per feature before responses (the same for both arms of the benchmark)."""
        return STEP1_CANDIDATES + self.samples_per_feature


@dataclass(frozen=True)
class Target:
    """A missing feature and what the prompts say about it."""

    feature: int
    explanation: str
    spans: tuple[Span, ...]
    """Where it fires: the anchor's top spans first, then the feature space's corpus spans."""
    scale: float
    """The latent's activation scale: scores shown to the generator are activation / scale."""
    min_activation: float
    """Absolute activation a sample must exceed for this feature (δ x scale)."""
    examples: tuple[str, ...] = ()
    """Whole anchor texts in which it fires, strongest first: what a few-shot prompt shows."""


@dataclass
class Attempt:
    """One generated sample and what became of it (the journal and ``attempts.jsonl`` hold these)."""

    feature: int
    step: str
    index: int
    text: str | None
    activation: float = 0.0
    passed: bool = False
    """Its target feature fired above δ."""
    on_task: bool = True
    """It reads like the task by the on-task gate (True where no gate runs or nothing was measured)."""
    task_match: float | None = None
    """Its best feature overlap with one anchor text (the gate's score), where a gate ran."""
    accepted: bool = False
    reason: str | None = None
    """Why it was not accepted: empty, generator failed, below threshold, duplicate of the data, ..."""
    active: list[int] = field(default_factory=list, repr=False)
    """Latents active above δ on it (for the feature-space dedup; not written to attempts.jsonl)."""
    span: str = ""
    peak: str = ""

    def record(self) -> dict:
        out = asdict(self)
        out.pop("active")
        return out


@dataclass
class NewRow:
    """An accepted sample with the fields the generator wrote for it."""

    feature: int
    index: int
    """Which step-2 draw of the feature it is (its identity in the journal)."""
    text: str
    activation: float
    generated: dict[str, str] = field(default_factory=dict)


@dataclass
class SynthesisResult:
    rows: list[NewRow]
    attempts: list[Attempt]
    calls: int
    """Generator completions the result used (answered now or read back from the journal)."""
    calls_now: int
    """Completions this run asked the generator for (all processes): ``calls`` minus journal hits."""
    features_tried: list[int]
    stopped_by: str
    """``budget``, ``max_calls`` or ``exhausted`` (every missing feature was tried)."""


def draw_seed(seed: int, feature: int, what: str) -> int:
    """The seed of one feature's draws at one step: independent of batches, rounds and processes."""
    return zlib.crc32(f"{seed}|{feature}|{what}".encode()) & 0x7FFFFFFF


_PREAMBLE = re.compile(r"^(sure|certainly|okay|ok|here('s| is| are))\b[^\n]*:\s*$", re.IGNORECASE)


def clean_sample(text: str | None, max_chars: int = 2000) -> str:
    """The sample a model wrote, without a "Here is ...:" preamble, wrapping quotes or outer blanks."""
    if not text:
        return ""
    lines = text.strip().splitlines()
    if len(lines) > 1 and _PREAMBLE.match(lines[0].strip()):
        lines = lines[1:]
    out = "\n".join(lines).strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'`":
        out = out[1:-1].strip()
    return out[:max_chars]


class Synthesizer:
    """Runs the loop over targets (see the module docstring). One per run; not thread-safe."""

    def __init__(self, space, generator, shape: DataShape, prompts: PromptSet, journal: Journal, *,
                 settings: Settings, seed: int, threshold: Threshold, dedup: DedupIndex, ranks: Ranks = Ranks(),
                 gate: TaskGate | None = None, show_progress: bool = True):
        self.space, self.generator, self.shape, self.prompts = space, generator, shape, prompts
        self.journal, self.settings, self.seed, self.threshold = journal, settings, seed, space.threshold_at(threshold)
        self.dedup, self.ranks, self.show_progress = dedup, ranks, show_progress
        self.gate = gate if settings.on_task else None
        """Rejects a sample that fires its target but does not read like the task (None: no gate)."""
        self.calls_now = 0
        """Completions this process asked the generator for."""
        self.features_done: list[int] = []
        """Features this process ran steps 1-2 for."""
        # Completions per generate() call: one local batch or one wave of HTTP requests, so a kill
        # loses at most that much unjournaled work.
        self.wave = int(getattr(generator, "batch_size", 0) or getattr(generator, "concurrency", 0) or 8)

    # ------------------------------------------------------------------ the loop
    def run(self, features: Sequence[int], make_target: Callable[[int], Target], *, budget: int | None = None,
            max_calls: int | None = None) -> SynthesisResult:
        """Synthesise for ``features`` in order until ``budget`` rows are accepted, the next round
        could exceed ``max_calls`` generator calls, or every feature was tried. ``make_target``
        describes a feature; it is called only for the features this process takes."""
        from tqdm.auto import tqdm

        rows: list[NewRow] = []
        attempts: list[Attempt] = []
        calls = 0
        tried: list[int] = []
        # Worst case per feature: every draw, then a response for every sample that can become a row.
        finals = self.settings.samples_per_feature if self.settings.contrastive else self.settings.draws
        per_feature = self.settings.draws + finals * len(self.shape.responses)
        stopped_by = "exhausted"
        bar = tqdm(total=budget or len(features), desc="Synthesising", unit="row" if budget else "feature",
                   disable=not (self.show_progress and self.ranks.main))
        pos = 0
        while pos < len(features):
            if budget is not None and len(rows) >= budget:
                stopped_by = "budget"
                break
            take = self.settings.features_per_round
            if max_calls is not None:
                # Reserve each feature's worst case (every sample accepted, every response written).
                take = min(take, (max_calls - calls) // per_feature)
                if take <= 0:
                    stopped_by = "max_calls"
                    break
            round_features = list(features[pos : pos + take])
            pos += len(round_features)
            mine = self.ranks.share(round_features)
            done = self._features([make_target(f) for _, f in mine])
            gathered: list[list[Attempt]] = self.ranks.gather([(k, done[f]) for k, f in mine])
            new_rows = []
            for feature, feature_attempts in zip(round_features, gathered):
                tried.append(feature)
                calls += len(feature_attempts)  # one attempt per completion drawn
                attempts.extend(feature_attempts)
                new_rows.extend(self._accept(feature, feature_attempts))
            # Complete rows in order until the budget is met: a row whose response comes back empty
            # is replaced by the next accepted sample, so rounds' boundaries cannot change the rows.
            pending, completed, asked = new_rows, [], []
            while pending and (budget is None or len(rows) + len(completed) < budget):
                need = len(pending) if budget is None else budget - len(rows) - len(completed)
                batch, pending = pending[:need], pending[need:]
                done, response_calls = self._complete(batch)
                calls += response_calls
                completed += done
                asked += batch
            rows.extend(completed)
            # Attempts say what became of them: beyond the budget, or a response came back empty.
            kept = {(r.feature, r.index) for r in completed}
            dropped = {(r.feature, r.index): "over budget" for r in pending}
            dropped.update({(r.feature, r.index): "empty response" for r in asked if (r.feature, r.index) not in kept})
            for a in attempts:
                if a.accepted and (a.feature, a.index) in dropped and a.step != "step1":
                    a.accepted, a.reason = False, dropped[(a.feature, a.index)]
            bar.update(len(completed) if budget else len(round_features))
        bar.close()
        if stopped_by == "exhausted" and budget is not None and len(rows) >= budget:
            stopped_by = "budget"
        calls_now = sum(self.ranks.gather([(self.ranks.rank, self.calls_now)]))
        return SynthesisResult(rows, attempts, calls, calls_now, tried, stopped_by)

    def _accept(self, feature: int, attempts: list[Attempt]) -> list[NewRow]:
        """Dedup the samples that passed, in order; the same decisions on every process."""
        out = []
        final_step = "step2" if self.settings.contrastive else "one_step"
        for a in attempts:
            if a.step != final_step or not (a.passed and a.on_task):
                continue
            reason = self.dedup.check(a.text, a.active)
            if reason is not None:
                a.reason = reason
                continue
            a.accepted = True
            self.dedup.add(a.text, a.active)
            out.append(NewRow(feature, a.index, a.text, a.activation))
        return out

    # ------------------------------------------------------------------ one process' share of a round
    def _features(self, targets: list[Target]) -> dict[int, list[Attempt]]:
        """Steps 1 and 2 (or the one step) for this process' targets; attempts per feature."""
        s = self.settings
        out: dict[int, list[Attempt]] = {t.feature: [] for t in targets}
        self.features_done += [t.feature for t in targets]
        if not s.contrastive:
            prompts = {t.feature: self.prompts.fill("one_step", **self._describe(t)) for t in targets}
            drawn = self._draw("one_step", prompts, s.draws, s.max_new_tokens)
            for t in targets:
                out[t.feature] += self._verify(t, "one_step", drawn[t.feature], prompts[t.feature])
            return out
        prompts = {t.feature: self.prompts.fill("step1", **self._describe(t)) for t in targets}
        drawn = self._draw("step1", prompts, STEP1_CANDIDATES, s.max_new_tokens)
        step2, shown = {}, {}
        for t in targets:
            candidates = self._verify(t, "step1", drawn[t.feature], prompts[t.feature])
            out[t.feature] += candidates
            contrast = self._contrast(t, candidates)
            from_anchor, verified = contrast.pop("_from_anchor"), contrast.pop("_verified")
            # The strong sample, if it passed, is shown last among the examples (next to the new
            # one); the weak one after them as the counter-example where the template has a <weak> turn.
            extra = [contrast["good"]] if verified else []
            step2[t.feature] = self.prompts.fill("step2", **self._describe(t, extra), **contrast)
            # Reusing a generated example is fine (it is not data); echoing the anchor's texts or
            # the instructions is not: check copies against the prompt without generated examples.
            generated = {"bad": ""} if from_anchor else {"bad": "", "good": "", "good_span": ""}
            shown[t.feature] = self.prompts.fill("step2", **self._describe(t), **{**contrast, **generated})
        drawn = self._draw("step2", step2, s.samples_per_feature, s.max_new_tokens)
        for t in targets:
            out[t.feature] += self._verify(t, "step2", drawn[t.feature], step2[t.feature], shown[t.feature])
        return out

    def _describe(self, t: Target, extra: Sequence[str] = ()) -> dict:
        """What every step may show of a target: its anchor texts as examples (weakest first,
        then ``extra``), the summary, the spans and the peak token."""
        return {"examples": [*reversed(t.examples), *extra], "explanation": t.explanation,
                "spans": render_spans(t.spans, max_spans=5), "peak": t.spans[0].peak_token.strip() if t.spans else ""}

    def _contrast(self, t: Target, candidates: list[Attempt]) -> dict:
        """The good and bad examples of step 2: stronger and weaker candidate (paper's fallback:
        the top anchor span is the good example when no candidate fires above δ; then
        ``_from_anchor`` is True)."""
        # An on-task candidate is the better good example even if another fires more strongly.
        ranked = sorted(candidates, key=lambda a: (not (a.passed and a.on_task), -a.activation, a.index))
        good, bad = ranked[0], ranked[-1]
        good_text, good_act, good_span, good_peak = good.text or "", good.activation, good.span, good.peak
        from_anchor = not (good.passed and good.on_task) and bool(t.spans)
        if from_anchor:
            top = t.spans[0]
            good_text, good_act, good_span, good_peak = top.span, top.activation, top.span, top.peak_token
        return {
            "_from_anchor": from_anchor, "_verified": good.passed and good.on_task,
            "good": good_text.replace("\n", " "), "good_score": f"{good_act / t.scale:.1f}",
            "good_span": _mark(good_span, good_peak), "good_peak": good_peak.strip(),
            "bad": (bad.text or "").replace("\n", " "), "bad_score": f"{bad.activation / t.scale:.1f}",
            "threshold": f"{self.threshold.delta:g}",
        }

    def _draw(self, step: str, prompts: dict[int, Prompt], n: int, max_new_tokens: int) -> dict[int, list[str | None]]:
        """``n`` completions per feature's prompt, from the journal where answered, else the generator.

        Each completion is journaled the moment it arrives (``on_answer``), under its own key, so
        an answer that was paid for is never asked for again: not after a kill, and not when
        another completion of the same prompt failed (only the missing ones are asked, with the
        seeds they would have had). At most ``wave`` completions are asked per call.
        """
        out: dict[int, list[str | None]] = {}
        todo: list[tuple[int, int]] = []  # (feature, j) still to ask
        for feature, prompt in prompts.items():
            key = answer_key(step, feature, prompt_text(prompt))
            whole = self.journal.get(key)  # runs before per-completion records kept one list per prompt
            texts = [self.journal.get(f"{key}|{j}", whole[j] if isinstance(whole, list) and len(whole) == n else None)
                     for j in range(n)]
            out[feature] = texts
            todo += [(feature, j) for j, text in enumerate(texts) if text is None]
        s = self.settings
        for start in range(0, len(todo), self.wave):
            part = todo[start : start + self.wave]
            features = list(dict.fromkeys(f for f, _ in part))
            wanted = {f: [j for g, j in part if g == f] for f in features}
            keys = {f: answer_key(step, f, prompt_text(prompts[f])) for f in features}

            def journal(i: int, k: int, text: str | None) -> None:
                feature = features[i]
                if text is not None:  # a failed request is no answer: asked again on resume
                    self.journal.put(f"{keys[feature]}|{wanted[feature][k]}", text)

            answers = self.generator.complete(
                [prompts[f] for f in features],
                [[completion_seed(draw_seed(self.seed, f, step), 0, j) for j in wanted[f]] for f in features],
                temperature=s.temperature, top_p=s.top_p, max_new_tokens=max_new_tokens, errors="none",
                on_answer=journal,
            )
            self.calls_now += len(part)
            for feature, texts in zip(features, answers):
                for j, text in zip(wanted[feature], texts):
                    out[feature][j] = text
        return out

    def _verify(self, t: Target, step: str, texts: list[str | None], prompt: Prompt,
                shown: Prompt | None = None) -> list[Attempt]:
        """Encode each sample alone and check its target feature; journal each attempt.

        A sample that mostly repeats its own prompt (the fragments or examples it was shown), or
        repeats any six words of the template's instructions, is not a new sample, however
        strongly it fires: small generators often echo.
        """
        out = []
        for j, raw in enumerate(texts):
            key = attempt_key(step, t.feature, prompt_text(prompt), j)
            known = self.journal.get(key)
            if known is not None:
                out.append(Attempt(**known))
                continue
            text = clean_sample(raw)
            attempt = Attempt(t.feature, step, j, text if raw is not None else None)
            if raw is None:
                attempt.reason = "generator failed"
            elif not text:
                attempt.reason = "empty"
            elif copies(text, prompt_text(shown or prompt)) or copies(text, self.prompts.scaffold(step), share=0):
                attempt.reason = "copies its prompt"
            else:
                attempt.activation, attempt.active, attempt.span, attempt.peak = self._measure(text, t.feature)
                attempt.passed = attempt.activation > t.min_activation
                attempt.reason = None if attempt.passed else "below threshold"
                if attempt.passed and self.gate is not None:
                    attempt.task_match = round(self.gate.score(attempt.active), 4)
                    attempt.on_task = attempt.task_match >= self.gate.cutoff
                    if not attempt.on_task:
                        attempt.reason = f"off-task (best match {attempt.task_match:.3f} < {self.gate.cutoff:.3f})"
            if raw is not None:  # a failed request is no result: asked again on resume
                self.journal.put(key, asdict(attempt))
            out.append(attempt)
        return out

    def _measure(self, text: str, feature: int) -> tuple[float, list[int], str, str]:
        """Target activation, active latents, and the span where the target peaks, of one sample."""
        chunk = next(iter(self.space.iter_peaks([text], batch_size=1, show_progress=False)))
        ids, vals = chunk.acts.row(0)
        active = ids[vals > self.threshold.per_latent[ids]].tolist()
        activation = chunk.acts.activation(0, feature)
        if activation <= 0:
            return 0.0, active, "", ""
        heaps = TopSpans(self.space.d_sae, 1, self.space.reader.tokenizer, 1)
        heaps.update(chunk)
        top = heaps.top(feature)[0]
        return float(activation), active, top.span, top.peak_token

    # ------------------------------------------------------------------ completing rows
    def _complete(self, rows: list[NewRow]) -> tuple[list[NewRow], int]:
        """The generated fields of each accepted row (spread over processes); rows whose fields
        come back empty are dropped. Returns the complete rows and the calls they cost."""
        fields = list(self.prompts.responses)
        if not fields or not rows:
            return rows, 0
        mine = self.ranks.share(rows)
        answers = {}
        for name in fields:
            prompts = {k: self.prompts.fill(name, sample=row.text) for k, row in mine}
            answers[name] = self._respond(name, prompts, rows)
        done = [(k, {name: answers[name][k] for name in fields}) for k, _ in mine]
        complete = []
        for row, generated in zip(rows, self.ranks.gather(done)):
            if all(generated.values()):
                row.generated = generated
                complete.append(row)
        return complete, len(rows) * len(fields)

    def _respond(self, name: str, prompts: dict[int, str], rows: list[NewRow]) -> dict[int, str]:
        """The generated ``name`` field of each row in ``prompts``: journaled where answered, else
        asked (each answer journaled as it arrives); ``""`` where the generator failed."""
        keys = {k: response_key(name, rows[k].feature, rows[k].index) for k in prompts}
        out: dict[int, str] = {k: self.journal.get(keys[k]) for k in prompts if keys[k] in self.journal}
        todo = [k for k in prompts if k not in out]
        s = self.settings
        for start in range(0, len(todo), self.wave):
            part = todo[start : start + self.wave]

            def journal(i: int, _: int, text: str | None) -> None:
                if text is not None:  # a failed request is no answer: asked again on resume
                    self.journal.put(keys[part[i]], clean_sample(text, max_chars=8000))

            answers = self.generator.generate(
                [prompts[k] for k in part], temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.response_tokens,
                seed=[draw_seed(self.seed, rows[k].feature, f"{name}|{rows[k].index}") for k in part], errors="none",
                on_answer=journal,
            )
            self.calls_now += len(part)
            for k, (text,) in zip(part, answers):
                out[k] = clean_sample(text, max_chars=8000) if text is not None else ""
        return out

def _mark(span: str, peak: str) -> str:
    """A span with its peak token marked, as in the step-1 fragments."""
    if not span:
        return "(nowhere)"
    cut = len(span) - len(peak)
    return (span[:cut] + f"[[{span[cut:]}]]").replace("\n", " ")


__all__ = ["Settings", "Target", "Attempt", "NewRow", "SynthesisResult", "Synthesizer", "clean_sample", "draw_seed",
           "STEP1_CANDIDATES"]
