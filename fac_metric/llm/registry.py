"""``get_generator``: a generator backend from a spec (a name, a folder, a URL or an instance)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fac_metric.llm.base import Generator, GeneratorError


def get_generator(spec: str | os.PathLike | Generator | None = None, *, model: str | None = None, **kwargs: Any) -> Generator:
    """A generator from a spec.

    ``None`` or ``"local"``: the embedded default LM (or ``model``) in this process;
    ``"local:<folder or Hub id>"`` or an existing folder: that LM in this process;
    ``"http://..."`` / ``"https://..."``: an OpenAI-compatible endpoint serving ``model`` (or its
    only model); a ``Generator``: returned as is. ``kwargs`` go to the backend's constructor.
    """
    if isinstance(spec, Generator):
        return spec
    if spec is None or spec == "local":
        from fac_metric.llm.local import LocalGenerator

        return LocalGenerator(model, **kwargs)
    text = os.fspath(spec)
    if text.startswith("local:") and text[len("local:") :]:
        from fac_metric.llm.local import LocalGenerator

        return LocalGenerator(text[len("local:") :], **kwargs)
    if text.startswith(("http://", "https://")):
        from fac_metric.llm.http import HTTPGenerator

        return HTTPGenerator(text, model=model, **kwargs)
    if Path(text).is_dir():
        from fac_metric.llm.local import LocalGenerator

        return LocalGenerator(text, **kwargs)
    raise GeneratorError(
        f"unknown generator {text!r}: use 'local', 'local:<folder or Hub id>', an existing model folder, "
        f"or the http(s):// URL of an OpenAI-compatible endpoint"
    )
