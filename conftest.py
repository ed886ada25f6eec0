"""Root conftest: doctest collection settings shared by the packages and tests."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")

# The Space app imports gradio only inside build_app(), so its module's doctests collect without it.
collect_ignore = ["setup.py"]
