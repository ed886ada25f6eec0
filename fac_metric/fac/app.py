"""Gradio app of the FAC Space: paste or upload data and an anchor, choose δ, coverage and
relevance, see FAC, the coverage plot and the missing features with their labels and highlighted spans.

evaluate's own ``launch_gradio_widget`` uses ``gr.inputs``, gone since gradio 4, so this is an
app of our own. Run locally with ``python fac_metric/fac/app.py`` (needs ``pip install gradio``;
``GRADIO_SERVER_PORT`` picks the port, loopback only unless ``GRADIO_SERVER_NAME`` says otherwise).
The score is the measurement's: ``run`` scores once and builds the page's result with
``measurement_result``, the function the module's ``compute()`` returns, then renders the
report ``fac score`` writes.

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


def file_texts(path: str | None, name: str) -> str:
    """An uploaded file (jsonl/json/csv/parquet/txt, read by its shape as ``fac score`` reads it)
    as one text per line, so the box limits apply to it too. Empty when nothing was uploaded."""
    if not path:
        return ""
    from fac_datasets_ext.io import read_texts

    texts = read_texts(path)
    if len(texts) > MAX_TEXTS:
        raise FacInputError(f"{name} file has {len(texts)} texts: this Space takes at most {MAX_TEXTS}")
    flat = [(t if isinstance(t, str) else " ".join(str(m.get("content", "")) for m in t)).replace("\n", " ")
            for t in texts]
    return "\n".join(flat)


def scoped_report(page: str) -> str:
    """The report page as a fragment for the app: its stylesheet applies inside
    ``<div class="fac-report">`` only (as a whole page it would restyle the app's ``body``).

    >>> scoped_report("<style>body{margin:0}h1,p{color:red}</style><h1>x</h1>")
    '<div class="fac-report"><style>.fac-report{margin:0}.fac-report h1,.fac-report p{color:red}</style><h1>x</h1></div>'
    """
    import re

    def scope(selectors: str) -> str:
        return ",".join(".fac-report" if s.strip() == "body" else f".fac-report {s.strip()}" for s in selectors.split(","))

    def scope_sheet(match: re.Match) -> str:
        return "<style>" + re.sub(r"(^|})\s*([^{}]+)\{", lambda m: m.group(1) + scope(m.group(2)) + "{",
                                  match.group(1)) + "</style>"

    return '<div class="fac-report">' + re.sub(r"<style>(.*?)</style>", scope_sheet, page, flags=re.S) + "</div>"


def run(data: str, anchor: str, threshold: float, coverage: str = "match", relevance: str = "all",
        data_file: str | None = None, anchor_file: str | None = None) -> tuple[str, str, dict]:
    """FAC of the pasted (or uploaded) texts: a one-line summary, the report as HTML (coverage plot,
    missing features with labels and highlighted spans) and the result dict (raises ``FacError``)."""
    import tempfile
    from pathlib import Path

    from fac_metric.meaning import measurement_result, write_report

    data = data if data and data.strip() else file_texts(data_file, "Data")
    anchor = anchor if anchor and anchor.strip() else file_texts(anchor_file, "Anchor")
    data_texts, anchor_texts = parse_inputs(data, anchor)
    kwargs = dict(threshold=threshold, feature_space=feature_space(), coverage=coverage,
                  relevance=relevance if anchor_texts else None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    # One encoding for both: score() keeps the anchor spans the report highlights, and
    # measurement_result() is how compute() turns the same output into its dict.
    out = fac_metric.score(data_texts, anchor_texts, show_progress=False, **kwargs)
    result = measurement_result(out)
    with tempfile.TemporaryDirectory() as tmp:
        write_report(out, Path(tmp) / "report", data_name="pasted data", anchor_name="pasted anchor")
        page = scoped_report((Path(tmp) / "report" / "report.html").read_text(encoding="utf-8"))
    fac = "undefined" if result["fac"] is None else f"{result['fac']:.3f}"
    summary = f"FAC = {fac}: {result['n_covered']} of {result['n_relevant']} relevant features covered."
    return summary, page, result


def build_app():
    """The Gradio page (imports gradio)."""
    import gradio as gr

    def on_click(data, anchor, threshold, coverage, relevance, data_file, anchor_file):
        try:
            return run(data, anchor, threshold, coverage, relevance, data_file, anchor_file)
        except fac_metric.FacError as err:
            raise gr.Error(str(err))

    with gr.Blocks(title="Feature Activation Coverage") as demo:
        gr.Markdown("# Feature Activation Coverage (FAC)\nHow much of a task's SAE feature space your data covers, "
                    f"and which task features it misses. Up to {MAX_TEXTS} texts per box, one per line, or upload a "
                    "jsonl/csv/parquet/txt file.")
        with gr.Row():
            with gr.Column():
                data_box = gr.Textbox(label="Data (one text per line)", lines=10, elem_id="data")
                data_file = gr.File(label="or upload data", type="filepath", elem_id="data_file")
            with gr.Column():
                anchor_box = gr.Textbox(label="Anchor: texts representative of the task (one per line)", lines=10,
                                        elem_id="anchor")
                anchor_file = gr.File(label="or upload an anchor", type="filepath", elem_id="anchor_file")
        with gr.Row():
            threshold = gr.Slider(0.1, 3.0, value=fac_metric.DEFAULT_THRESHOLD, step=0.05,
                                  label="δ (relative to each feature's scale)", elem_id="threshold")
            coverage = gr.Radio(["match", "binary"], value="match", label="coverage", elem_id="coverage")
            relevance = gr.Radio(["all", "contrast"], value="all", label="relevance", elem_id="relevance")
        button = gr.Button("Compute FAC", elem_id="compute")
        summary = gr.Markdown(elem_id="summary")
        report = gr.HTML(elem_id="report")
        details = gr.JSON(label="Result")
        button.click(on_click, [data_box, anchor_box, threshold, coverage, relevance, data_file, anchor_file],
                     [summary, report, details])
    return demo


if __name__ == "__main__":
    build_app().launch()
