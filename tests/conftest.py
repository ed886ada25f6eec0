"""Shared fixtures. Tests run offline, on one thread per process, with the embedded default space."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

collect_ignore = ["data/evaluate_modules"]  # a vendored evaluate module: its doctests load from the Hub

pytest_plugins = ["tests.servers"]


@pytest.fixture(scope="session")
def space():
    from fac_metric import get_feature_space

    return get_feature_space(None, dtype="float32")


@pytest.fixture(scope="session")
def anchor_texts():
    from fac_metric.examples import load_example

    return load_example("ifeval_anchor")


@pytest.fixture(scope="session")
def heldout_texts():
    from fac_metric.examples import load_example

    return load_example("ifeval_heldout")


@pytest.fixture(scope="session")
def brown_texts():
    from fac_metric.examples import load_example

    return load_example("brown_unseen")


@pytest.fixture(scope="session")
def local_generator():
    from fac_metric.llm import LocalGenerator

    return LocalGenerator()


@pytest.fixture(scope="session")
def anchor_scored(space, anchor_texts, brown_texts):
    """Unrelated prose scored against the 300-prompt IFEval anchor, with the anchor's spans: the
    paper's binary FAC over contrast features (the missing features explain and augment target)."""
    from fac_metric.scoring import score

    return score(brown_texts[:40], anchor_texts, feature_space=space, show_progress=False, coverage="binary")


@pytest.fixture(scope="session")
def validity_quick(tmp_path_factory):
    """The validity study's quick mode, run once: ``(work, out)``, its encodings cache and its
    results folder. The synthesis study's quick mode reads the same encodings from ``work``."""
    from experiments.validity.__main__ import main

    root = tmp_path_factory.mktemp("validity_quick")
    main(["--quick", "--work", str(root / "work"), "--out", str(root / "out")])
    return root / "work", root / "out"
