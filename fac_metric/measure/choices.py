"""The choices a user makes about relevance, as plain constants: what the CLI's options list.

Owns: the relevance modes, the coverage rules, their defaults and the shipped guidelines' names, in a module that
imports nothing heavy (``fac --help`` reads it). Must not: compute anything.

>>> RELEVANCE_MODES, "instruction_following" in shipped_guidelines()
(('contrast', 'judge', 'all'), True)
"""

from __future__ import annotations

from pathlib import Path

RELEVANCE_MODES = ("contrast", "judge", "all")
"""The modes that choose features; explicit ids are mode ``given``."""
DEFAULT_RELEVANCE = "contrast"
DEFAULT_ALPHA = 0.05
"""False-discovery rate of the contrast test."""
COVERAGES = ("binary", "match")
"""How a FAC is counted: ``binary``, the paper's (share of relevant features some text fires), or
``match`` (per anchor text, the best overlap of its relevant features with one data text; see
:mod:`fac_metric.measure.match` and docs/results.md)."""
DEFAULT_COVERAGE = "binary"
DEFAULT_MAX_JUDGED = 200
"""The judge reads at most this many candidate features (the anchor's most frequent)."""
GUIDELINES_DIR = Path(__file__).parent / "guidelines"
"""The shipped task guidelines of ``judge`` mode, one ``<name>.txt`` each."""


def shipped_guidelines() -> list[str]:
    """Names of the shipped guidelines (``relevance='judge', guideline=<name>``)."""
    return sorted(p.stem for p in GUIDELINES_DIR.glob("*.txt"))


__all__ = ["RELEVANCE_MODES", "DEFAULT_RELEVANCE", "COVERAGES", "DEFAULT_COVERAGE", "DEFAULT_ALPHA", "DEFAULT_MAX_JUDGED", "GUIDELINES_DIR",
           "shipped_guidelines"]
