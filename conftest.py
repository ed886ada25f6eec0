"""Root conftest: doctest collection settings shared by the packages and tests."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")

# The Gradio app needs the optional `gradio` extra; the Space installs it, the tests do not.
collect_ignore = ["setup.py"]
