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
"""How features are chosen where they are *targets* (augment, explain, the paper's binary FAC):
the anchor's features that are significantly more frequent than in a contrast set."""
DEFAULT_ALPHA = 0.05
"""False-discovery rate of the contrast test."""
COVERAGES = ("binary", "match")
"""How a FAC is counted: ``binary``, the paper's (share of relevant features some text fires), or
``match`` (per anchor text, the best overlap of its relevant features with one data text; see
:mod:`fac_metric.measure.match` and docs/results.md)."""
DEFAULT_COVERAGE = "match"
"""How ``score``/``compute``/``fac score`` count FAC unless told: ``match``, which (with relevance
``all``) ranked training sets by what a classifier learned from them better than the paper's
binary FAC and every text or embedding baseline on both tasks of docs/results.md."""


def default_relevance(coverage: str, contrast: object = None) -> str:
    """The relevance mode a measurement uses when none is named: ``all`` with ``match`` (match
    compares whole feature profiles text by text, so it needs no test to drop the form features
    every prompt shares; the test's choice predicted worse on the check task), ``contrast`` with
    ``binary`` (the paper's FAC, which does) or whenever a contrast set is given.

    >>> default_relevance("match"), default_relevance("binary"), default_relevance("match", contrast=["x"])
    ('all', 'contrast', 'contrast')
    """
    return "all" if coverage == "match" and contrast is None else DEFAULT_RELEVANCE


DEFAULT_MAX_JUDGED = 200
"""The judge reads at most this many candidate features (the anchor's most frequent)."""
GUIDELINES_DIR = Path(__file__).parent / "guidelines"
"""The shipped task guidelines of ``judge`` mode, one ``<name>.txt`` each."""


def shipped_guidelines() -> list[str]:
    """Names of the shipped guidelines (``relevance='judge', guideline=<name>``)."""
    return sorted(p.stem for p in GUIDELINES_DIR.glob("*.txt"))


__all__ = ["RELEVANCE_MODES", "DEFAULT_RELEVANCE", "COVERAGES", "DEFAULT_COVERAGE", "default_relevance", "DEFAULT_ALPHA", "DEFAULT_MAX_JUDGED", "GUIDELINES_DIR",
           "shipped_guidelines"]
