"""Gradio app of the FAC Space: paste data and anchor texts (one per line), get FAC and missing features.

evaluate's own ``launch_gradio_widget`` broke with gradio >= 4, so this is a small app of our own.
Run locally with ``python fac_metric/fac/app.py`` (needs ``pip install gradio``).

What a visitor can send is capped (``MAX_TEXTS`` lines and ``MAX_CHARS`` characters per box,
``MAX_TEXT_CHARS`` per line), checked by :func:`parse_inputs` before anything is encoded: a
public Space runs on a shared CPU, and one paste must not hold it for an hour. Gradio is
imported only to build the page, so the checks import and test without it.

>>> parse_inputs("a first text\\n\\n  \\na second", "")
(['a first text', 'a second'], None)
>>> parse_inputs("x\\n" * (MAX_TEXTS + 1), "")
Traceback (most recent call last):
...
fac_metric.errors.FacInputError: Data has 1001 texts: this Space takes at most 1000 per box (run `fac score` or compute() locally for more)
"""

from __future__ import annotations

import fac_metric
from fac_metric.errors import FacInputError

MAX_TEXTS = 1000
"""Texts (non-blank lines) per box at most."""
MAX_TEXT_CHARS = 20_000
"""Characters of one text at most (the encoder reads 512 tokens of it anyway)."""
MAX_CHARS = 1_000_000
"""Characters per box at most."""


def parse_inputs(data: str | None, anchor: str | None) -> tuple[list[str], list[str] | None]:
    """The data and anchor texts of the two boxes (one per non-blank line), or a ``FacInputError``
    saying which limit a box breaks. An empty anchor box is ``None`` (FAC against the background)."""
    boxes = []
    for name, value in (("Data", data), ("Anchor", anchor)):
        value = value or ""
        if not isinstance(value, str):
            raise FacInputError(f"{name} must be text, not {type(value).__name__}")
        if len(value) > MAX_CHARS:
            raise FacInputError(f"{name} has {len(value):,} characters: this Space takes at most {MAX_CHARS:,} per box")
        texts = [line.strip() for line in value.splitlines() if line.strip()]
        if len(texts) > MAX_TEXTS:
            raise FacInputError(f"{name} has {len(texts)} texts: this Space takes at most {MAX_TEXTS} per box "
                                "(run `fac score` or compute() locally for more)")
        long = next((i for i, t in enumerate(texts) if len(t) > MAX_TEXT_CHARS), None)
        if long is not None:
            raise FacInputError(f"{name} text {long + 1} has {len(texts[long]):,} characters: at most "
                                f"{MAX_TEXT_CHARS:,} per text")
        boxes.append(texts)
    if not boxes[0]:
        raise FacInputError("Data is empty: paste at least one text, one per line.")
    return boxes[0], boxes[1] or None


_measurement = None


def feature_space() -> str | None:
    """The feature space this app scores in: ``$FAC_FEATURE_SPACE``, else ``space_config.json``
    beside the app (written by ``hub_scripts/push_space.py``), else None (the embedded default)."""
    import json
    import os
    from pathlib import Path

    if os.environ.get("FAC_FEATURE_SPACE"):
        return os.environ["FAC_FEATURE_SPACE"]
    config = Path(__file__).with_name("space_config.json")
    return json.loads(config.read_text()).get("feature_space") if config.is_file() else None


def run(data: str, anchor: str, threshold: float) -> tuple[str, dict]:
    """FAC of the pasted texts: a one-line summary and the full result (raises ``FacError``)."""
    global _measurement
    data_texts, anchor_texts = parse_inputs(data, anchor)
    if _measurement is None:
        _measurement = fac_metric.load()
    result = _measurement.compute(data=data_texts, anchor=anchor_texts, threshold=threshold,
                                  feature_space=feature_space())
    fac = "undefined" if result["fac"] is None else f"{result['fac']:.3f}"
    return f"FAC = {fac}: {result['n_covered']} of {result['n_relevant']} relevant features covered.", result


def build_app():
    """The Gradio page (imports gradio)."""
    import gradio as gr

    def on_click(data: str, anchor: str, threshold: float):
        try:
            return run(data, anchor, threshold)
        except fac_metric.FacError as err:
            raise gr.Error(str(err))

    with gr.Blocks(title="Feature Activation Coverage") as demo:
        gr.Markdown("# Feature Activation Coverage (FAC)\nHow much of a task's SAE feature space your data covers. "
                    f"Up to {MAX_TEXTS} texts per box.")
        with gr.Row():
            data_box = gr.Textbox(label="Data (one text per line)", lines=10)
            anchor_box = gr.Textbox(label="Anchor: texts representative of the task (one per line)", lines=10)
        threshold = gr.Slider(0.1, 2.0, value=fac_metric.DEFAULT_THRESHOLD, step=0.05,
                              label="δ (relative to each feature's scale)")
        button = gr.Button("Compute FAC")
        summary = gr.Markdown()
        details = gr.JSON(label="Result")
        button.click(on_click, [data_box, anchor_box, threshold], [summary, details])
    return demo


if __name__ == "__main__":
    build_app().launch()
