"""The README's `>>>` examples run as written (the encode-once-score-many section)."""

import doctest
from pathlib import Path


def test_readme_examples_run():
    result = doctest.testfile(str(Path(__file__).parents[1] / "README.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0, result
