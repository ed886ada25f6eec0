"""fac_datasets_ext: the ``datasets`` side of fac and the ``fac`` command.

Importing it registers ``Dataset.augment_with_fac`` and ``DatasetDict.augment_with_fac``
(:mod:`fac_datasets_ext.augment`). Also here: the map-style ``FeatureEncoder``
(:mod:`fac_datasets_ext.encoder`), data shapes, the synthesis loop, and the CLI (``cli``).

>>> import datasets, fac_datasets_ext
>>> hasattr(datasets.Dataset, "augment_with_fac") and hasattr(datasets.DatasetDict, "augment_with_fac")
True
"""

from .augment import PROVENANCE_COLUMNS, AugmentResult, augment, augment_with_fac, register
from .encoder import FeatureEncoder

register()

__all__ = ["FeatureEncoder", "augment", "augment_with_fac", "AugmentResult", "PROVENANCE_COLUMNS", "register"]
