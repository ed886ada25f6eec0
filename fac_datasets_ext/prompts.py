"""The prompt templates of synthesis: shipped per data shape, replaceable by the user's own.

Owns: finding a shape's templates (``templates/text`` for passages, ``templates/request`` for
anything sent to an assistant: chats, Alpaca instructions, preference prompts), the response
templates that complete a row (``templates/responses``), reading a user's overrides (a folder of
same-named files, or a dict of file paths or template strings), and filling them in with a clear
error for an unknown placeholder. Must not: sample or encode.

Placeholders (Python ``str.format`` names):

- ``step1``: ``{explanation}``, ``{spans}`` (numbered fragments, peak token ``[[marked]]``);
- ``step2``: those, plus ``{good}``, ``{good_score}``, ``{good_span}``, ``{good_peak}``, ``{bad}``,
  ``{bad_score}``, ``{threshold}`` (scores are relative: ``threshold`` is δ);
- ``one_step`` (the benchmark's baseline: no contrastive pair): ``{explanation}``, ``{spans}``;
- responses (``output``, ``response``, ``chosen``, ``rejected``): ``{sample}``.

>>> prompts = PromptSet.load("instruction")
>>> sorted(prompts.responses)
['output']
>>> "{sample}" in prompts.responses["output"]
True
>>> PromptSet.load("text", {"step1": "Write about {explanation}."}).fill("step1", explanation="rain", spans="")
'Write about rain.'
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from fac_metric import FacInputError

TEMPLATES = Path(__file__).parent / "templates"
STEPS = ("step1", "step2", "one_step")
_STEP_FOLDER = {"text": "text", "messages": "request", "instruction": "request", "preference": "request"}
_DESCRIBE = ("explanation", "spans")
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

    def fill(self, name: str, **values: object) -> str:
        """Template ``name`` (a step or a response field) with its placeholders filled in."""
        template = self.steps.get(name, self.responses.get(name))
        if template is None:
            raise FacInputError(f"no template named {name!r}")
        try:
            return template.format_map(values).strip()
        except KeyError as err:
            raise FacInputError(f"template {name!r} uses the placeholder {{{err.args[0]}}}, which it cannot have; "
                                f"available: {sorted(values)}") from None
        except (ValueError, IndexError) as err:
            raise FacInputError(f"template {name!r} is not a valid format string ({err}): "
                                "write literal braces as {{ and }}") from None

    def scaffold(self, name: str) -> str:
        """Template ``name`` with every placeholder empty: its own instructions, nothing shown."""
        template = self.steps.get(name, self.responses.get(name, ""))
        return template.format_map(_Blank()).strip()

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


def _check(name: str, template: str, allowed: tuple[str, ...]) -> None:
    """Refuse a template that cannot be filled: a bad format string or an unknown placeholder."""
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


__all__ = ["PromptSet", "STEPS", "TEMPLATES"]
