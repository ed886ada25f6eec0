"""Publish the FAC measurement as a Gradio Space (``evaluate.load("NAMESPACE/NAME")`` loads it too).

    python -m hub_scripts.push_space NAMESPACE/fac --dry-run --out built_space/
    python -m hub_scripts.push_space NAMESPACE/fac --feature-space NAMESPACE/smollm2-135m-l15

The folder holds the module (``<name>.py``, named after the repo as evaluate expects), its card (front matter ``sdk: gradio``, ``app_file:
app.py``, tags ``evaluate`` and ``measurement``), ``app.py``, ``space_config.json`` (the feature
space the app scores in) and a ``requirements.txt`` that installs this package: from a wheel
built into ``wheels/`` when run from a source checkout, else ``fac-metric==<version>`` from PyPI.
The default LM is not on PyPI in a form pip can install with its dependencies, so a Space reads
a feature space published *with* its LM (``python -m hub_scripts.push_feature_space
NAMESPACE/smollm2-135m-l15 --with-lm``): pass its id as ``--feature-space``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from hub_scripts._cli import run_push

GRADIO_VERSION = "6.31.0"
"""The Space's ``sdk_version`` and the gradio its requirements pin (the newest release when written)."""

DEFAULT_FEATURE_SPACE = "fac-metric/smollm2-135m-l15"
"""Where ``push_feature_space --with-lm`` publishes the embedded default, by this project's convention."""

def source_root() -> Path | None:
    """The source checkout this package runs from (it has ``setup.cfg``), or None when installed."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "setup.cfg").is_file() and (root / "fac_metric").is_dir() else None


def build_space(out: Path, *, feature_space: str | None = DEFAULT_FEATURE_SPACE, wheel: bool = True,
                overwrite: bool = False) -> Path:
    """Write the Space folder into ``out`` (see the module docstring) and return it.

    evaluate finds a module's script by the name of its repo or folder (``evaluate.load("ns/fac")``
    runs ``fac.py``), so the script is named after ``out``: build into a folder named like the repo.
    """
    import fac_metric
    from fac_metric.publish import fresh_folder, link_or_copy

    out = fresh_folder(out, overwrite=overwrite)
    module = Path(fac_metric.MODULE_PATH)
    link_or_copy(module / "fac.py", out / f"{out.name}.py")
    link_or_copy(module / "app.py", out / "app.py")
    card = (module / "README.md").read_text(encoding="utf-8")
    card, n = re.subn(r"(?m)^sdk_version: .*$", f"sdk_version: {GRADIO_VERSION}", card, count=1)
    if n != 1 or "app_file: app.py" not in card:
        raise AssertionError("the module card lost its sdk_version or app_file line")
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / "space_config.json").write_text(json.dumps({"feature_space": feature_space}, indent=2) + "\n")
    root = source_root() if wheel else None
    if root is not None:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(root), "-w", str(out / "wheels")],
                       check=True, capture_output=True)
        package = f"./wheels/{next((out / 'wheels').glob('fac_metric-*.whl')).name}"
    else:
        package = f"fac-metric=={fac_metric.__version__}"
    (out / "requirements.txt").write_text(f"{package}\ngradio=={GRADIO_VERSION}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_scripts.push_space", description=__doc__.split("\n")[0])
    parser.add_argument("repo_id", help="Hub Space to create or update: namespace/name")
    parser.add_argument("--feature-space", default=DEFAULT_FEATURE_SPACE,
                        help=f"feature space the app scores in: a Hub id published with its LM (default {DEFAULT_FEATURE_SPACE})")
    parser.add_argument("--no-wheel", dest="wheel", action="store_false",
                        help="require fac-metric from PyPI instead of a wheel built from this checkout")

    def build(args, out):
        return build_space(out, feature_space=args.feature_space, wheel=args.wheel, overwrite=args.overwrite)

    return run_push(parser, argv, "space", build, space_sdk="gradio")


if __name__ == "__main__":
    sys.exit(main())
