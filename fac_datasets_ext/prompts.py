"""The prompt templates of synthesis: shipped per data shape, replaceable by the user's own.

Owns: finding a shape's templates (``templates/text`` for passages, ``templates/request`` for
anything sent to an assistant: chats, Alpaca instructions, preference prompts), the response
templates that complete a row (``templates/responses``), reading a user's overrides (a folder of
same-named files, or a dict of file paths or template strings), and filling them in with a clear
error for an unknown placeholder. Must not: sample or encode.

A step template is either one user turn (plain text), or a *few-shot* template: a chat in
which the user asks for an example of the task and the assistant answers with a real anchor text
that fires the feature, several times over, then asks once more. Small generators follow this far
better than a description of what to write (asked to "write a request" about a described
feature, SmolLM2-135M writes text *about* features; shown four real requests as its own earlier
answers, it writes a fifth). A few-shot template has sections, each opened by a line of its own:

- ``<first>``: the user's first turn (asking for an example);
- ``<next>``: every later user turn (asking for another one), including the last;
- ``<weak>`` (optional, step 2): after the examples, the weak sample of the contrastive pair is
  shown as one more answer, and this turn says it is not like the others.

The examples are the target's anchor texts (weakest first, so the strongest sits next to the new
sample) and, in step 2, the strong sample of the pair last. No default template names features,
activations or models: what the generator is shown is what it writes about.

Placeholders (Python ``str.format`` names), in any section:

- ``step1``: ``{explanation}``, ``{spans}`` (numbered fragments, peak token ``[[marked]]``),
  ``{peak}`` (the token the feature fires on most in its strongest anchor text);
- ``step2``: those, plus ``{good}``, ``{good_score}``, ``{good_span}``, ``{good_peak}``, ``{bad}``,
  ``{bad_score}``, ``{threshold}`` (scores are relative: ``threshold`` is δ);
- ``one_step`` (the benchmark's baseline: no contrastive pair): as ``step1``;
- responses (``output``, ``response``, ``chosen``, ``rejected``): ``{sample}``.

>>> prompts = PromptSet.load("instruction")
>>> sorted(prompts.responses)
['output']
>>> "{sample}" in prompts.responses["output"]
True
>>> PromptSet.load("text", {"step1": "Write about {explanation}."}).fill("step1", explanation="rain", spans="")
'Write about rain.'
>>> chat = PromptSet.load("text", {"step1": "<first>\\nA line, please.\\n<next>\\nAnother."}).fill(
...     "step1", examples=["Rain fell.", "Snow came."])
>>> [(m["role"], m["content"]) for m in chat]    # doctest: +NORMALIZE_WHITESPACE
[('user', 'A line, please.'), ('assistant', 'Rain fell.'), ('user', 'Another.'), ('assistant', 'Snow came.'),
 ('user', 'Another.')]
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

from fac_metric import FacInputError

TEMPLATES = Path(__file__).parent / "templates"
STEPS = ("step1", "step2", "one_step")
_STEP_FOLDER = {"text": "text", "messages": "request", "instruction": "request", "preference": "request"}
_DESCRIBE = ("explanation", "spans", "peak")
_SECTIONS = ("first", "next", "weak")
_SECTION_LINE = re.compile(r"^<(first|next|weak)>[ \t]*$", re.MULTILINE)
Prompt = Union[str, list]
"""What a step sends: one user turn, or a chat (a list of ``{"role", "content"}`` messages)."""
_PLACEHOLDERS = {
    "step1": _DESCRIBE, "one_step": _DESCRIBE,
    "step2": _DESCRIBE + ("good", "good_score", "good_span", "good_peak", "bad", "bad_score", "threshold"),
}
_RESPONSES = {
    "text": {},
    "messages": {"response": "answer"},
    "instruction": {"output": "answer"},
    "preference": {"chosen": "answer", "rejected": "rejected"},
}


@dataclass(frozen=True)
class PromptSet:
    """The templates one synthesis run uses (``steps``: step1/step2/one_step; ``responses`` by field)."""

    steps: Mapping[str, str]
    responses: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, shape: str, overrides: str | os.PathLike | Mapping[str, str] | None = None) -> "PromptSet":
        """The shipped templates of ``shape``, with any of them replaced by ``overrides``.

        ``overrides``: a folder holding some of ``step1.txt``, ``step2.txt``, ``one_step.txt`` or
        ``<field>.txt`` (e.g. ``output.txt``); or a dict ``{name: template text or path to a .txt}``.
        """
        if shape not in _STEP_FOLDER:
            raise FacInputError(f"no templates for shape {shape!r}; shapes are {sorted(_STEP_FOLDER)}")
        steps = {name: _read(TEMPLATES / _STEP_FOLDER[shape] / f"{name}.txt") for name in STEPS}
        responses = {name: _read(TEMPLATES / "responses" / f"{file}.txt") for name, file in _RESPONSES[shape].items()}
        for name, text in _overrides(overrides).items():
            if name in steps:
                steps[name] = text
            elif name in responses:
                responses[name] = text
            else:
                raise FacInputError(f"template {name!r} is not used for shape {shape!r}: "
                                    f"it uses {list(steps) + list(responses)}")
        for name, text in {**steps, **responses}.items():
            _check(name, text, _PLACEHOLDERS.get(name, ("sample",)))
        return cls(steps, responses)

    def fill(self, name: str, examples: Sequence[str] = (), bad: str | None = None, **values: object) -> Prompt:
        """Template ``name`` (a step or a response field) with its placeholders filled in: a string,
        or for a few-shot template a chat showing ``examples`` as the assistant's earlier answers
        (and ``bad``, the weak sample, where the template has a ``<weak>`` section)."""
        template = self.steps.get(name, self.responses.get(name))
        if template is None:
            raise FacInputError(f"no template named {name!r}")
        values = {**values, "bad": bad or ""}
        sections = _sections(template)
        if sections is None:
            return _format(name, template, values)
        if not examples:
            raise FacInputError(f"template {name!r} is few-shot: it needs at least one example to show")
        turns = {k: _format(name, v, values) for k, v in sections.items()}
        chat: list[dict] = []
        for i, example in enumerate(examples):
            chat += [{"role": "user", "content": turns["first" if i == 0 else "next"]},
                     {"role": "assistant", "content": example}]
        if bad and "weak" in turns:
            chat += [{"role": "user", "content": turns["next"]}, {"role": "assistant", "content": bad},
                     {"role": "user", "content": turns["weak"]}]
        else:
            chat.append({"role": "user", "content": turns["next"]})
        return chat

    def scaffold(self, name: str) -> str:
        """Template ``name`` with every placeholder empty: its own instructions, nothing shown
        (a few-shot template's turns, one per line)."""
        template = self.steps.get(name, self.responses.get(name, ""))
        sections = _sections(template)
        parts = list(sections.values()) if sections is not None else [template]
        return "\n".join(part.format_map(_Blank()).strip() for part in parts)

    def fingerprint(self) -> str:
        """Hash of every template: a run directory is only reused with the same prompts."""
        h = hashlib.blake2b(digest_size=8)
        for name in sorted(self.steps):
            h.update(f"{name}\x1f{self.steps[name]}\x1e".encode())
        for name in sorted(self.responses):
            h.update(f"{name}\x1f{self.responses[name]}\x1e".encode())
        return h.hexdigest()


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def prompt_text(prompt: Prompt) -> str:
    """A prompt as one string: for journal keys and for checking what a sample copies.

    >>> prompt_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Rain."}])
    'user: Hi\\nassistant: Rain.'
    """
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def _sections(template: str) -> dict[str, str] | None:
    """A few-shot template's sections by name, or None for a one-turn template."""
    marks = list(_SECTION_LINE.finditer(template))
    if not marks:
        return None
    if template[: marks[0].start()].strip():
        raise FacInputError("a few-shot template must start with its <first> line; found text before it")
    out = {}
    for mark, end in zip(marks, [m.start() for m in marks[1:]] + [len(template)]):
        if mark.group(1) in out:
            raise FacInputError(f"a few-shot template has two <{mark.group(1)}> sections")
        out[mark.group(1)] = template[mark.end() : end].strip()
    missing = [k for k in ("first", "next") if not out.get(k)]
    if missing:
        raise FacInputError(f"a few-shot template needs non-empty <first> and <next> sections; missing: {missing}")
    return out


def _format(name: str, template: str, values: Mapping[str, object]) -> str:
    try:
        return template.format_map(values).strip()
    except KeyError as err:
        raise FacInputError(f"template {name!r} uses the placeholder {{{err.args[0]}}}, which it cannot have; "
                            f"available: {sorted(values)}") from None
    except (ValueError, IndexError) as err:
        raise FacInputError(f"template {name!r} is not a valid format string ({err}): "
                            "write literal braces as {{ and }}") from None


def _check(name: str, template: str, allowed: tuple[str, ...]) -> None:
    """Refuse a template that cannot be filled: a bad format string, an unknown placeholder,
    or a few-shot template without its sections."""
    try:
        _sections(template)
    except FacInputError as err:
        raise FacInputError(f"template {name!r}: {err}") from None
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise FacInputError(f"template {name!r} is not a valid format string ({err}): "
                            "write literal braces as {{ and }}") from None
    unknown = sorted(f for f in fields if f not in allowed)
    if unknown:
        raise FacInputError(f"template {name!r} uses the placeholder {{{unknown[0]}}}, which it cannot have; "
                            f"available: {list(allowed)}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FacInputError(f"template {path} is not valid UTF-8 (byte {err.start})") from None
    except OSError as err:
        raise FacInputError(f"cannot read template {path}: {err.strerror}") from None


def _overrides(spec: str | os.PathLike | Mapping[str, str] | None) -> dict[str, str]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        out = {}
        for name, value in spec.items():
            if not isinstance(value, str):
                raise FacInputError(f"template {name!r} must be a string (template text or a path), not {type(value).__name__}")
            path = Path(value)
            out[name] = _read(path) if value.endswith(".txt") else value
        return out
    folder = Path(os.fspath(spec))
    if not folder.is_dir():
        raise FacInputError(f"templates={str(spec)!r} is not a folder of .txt templates")
    return {p.stem: _read(p) for p in sorted(folder.glob("*.txt"))}


__all__ = ["PromptSet", "Prompt", "STEPS", "TEMPLATES", "prompt_text"]
