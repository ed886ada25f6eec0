"""Exceptions fac raises for bad input: each message says what was wrong and what to do instead.

They subclass the built-in type a caller would catch anyway (``ValueError``, ``FileNotFoundError``),
so ``except ValueError`` keeps working, while ``except FacError`` catches everything of ours.
"""

from __future__ import annotations


class FacError(Exception):
    """Base class of every error fac raises on purpose."""


class FacInputError(FacError, ValueError):
    """The texts, files or arguments a user passed are unusable (empty, wrong type, ...)."""


class FacModelError(FacError, ValueError):
    """A model, SAE or feature space cannot be found, loaded, or does not fit together."""


class FacMismatchError(FacError, ValueError):
    """A saved profile or cache belongs to another feature space or threshold."""


class FacWarning(UserWarning):
    """Something fac changed or could not vouch for, and went on: texts dropped, dtypes mixed, ..."""
