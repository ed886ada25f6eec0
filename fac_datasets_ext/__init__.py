"""fac_datasets_ext: the ``datasets`` side of fac and the ``fac`` command.

Today: reading data files (``io``) and the CLI (``cli``). ``Dataset.augment_with_fac`` and the
map-style ``FeatureEncoder`` are registered here when the synthesis feature lands.
"""
