"""fac_datasets_ext: the ``datasets`` side of fac and the ``fac`` command.

Importing it registers ``Dataset.augment_with_fac`` and ``DatasetDict.augment_with_fac``
(:mod:`fac_datasets_ext.augmentation`): at once if ``datasets`` is already imported, else as soon as
it is (so ``fac --help`` does not pay the second ``datasets`` takes to import). Also here: the
map-style ``FeatureEncoder`` (:mod:`fac_datasets_ext.encoder`), data shapes, the synthesis
loop, and the CLI (``cli``). Must not: measure on its own: it uses only the names
``fac_metric`` and its parts publish.

>>> import datasets, fac_datasets_ext
>>> hasattr(datasets.Dataset, "augment_with_fac") and hasattr(datasets.DatasetDict, "augment_with_fac")
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

_PUBLIC = {"FeatureEncoder": "encoder", "augment": "augmentation", "augment_with_fac": "augmentation",
           "AugmentResult": "augmentation", "PROVENANCE_COLUMNS": "augmentation", "register": "augmentation"}


def __getattr__(name: str):
    """The public names, imported on first use (so ``fac --help`` imports no ``datasets``)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)


def _register() -> None:
    from fac_datasets_ext.augmentation import register

    register()


class _RegisterWhenImported(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``datasets`` with the normal machinery, then registers the methods once it has loaded."""

    def find_spec(self, name, path, target=None):
        if name != "datasets":
            return None
        sys.meta_path.remove(self)  # once only; the real finders do the finding
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register()


if "datasets" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterWhenImported) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenImported())

__all__ = ["FeatureEncoder", "augment", "augment_with_fac", "AugmentResult", "PROVENANCE_COLUMNS", "register"]
