"""Gradio app of the FAC Space: paste data and anchor texts (one per line), get FAC and missing features.

evaluate's own ``launch_gradio_widget`` broke with gradio >= 4, so this is a small app of our own.
Run locally with ``python fac_metric/fac/app.py`` (needs ``pip install gradio``).
"""

import gradio as gr

import fac_metric

measurement = fac_metric.load()


def run(data: str, anchor: str, threshold: float):
    data_texts = [line for line in data.splitlines() if line.strip()]
    anchor_texts = [line for line in anchor.splitlines() if line.strip()]
    if not data_texts:
        raise gr.Error("Data is empty: paste at least one text, one per line.")
    try:
        result = measurement.compute(data=data_texts, anchor=anchor_texts or None, threshold=threshold)
    except fac_metric.FacError as err:
        raise gr.Error(str(err))
    fac = "undefined" if result["fac"] is None else f"{result['fac']:.3f}"
    summary = f"FAC = {fac}: {result['n_covered']} of {result['n_relevant']} relevant features covered."
    return summary, result


with gr.Blocks(title="Feature Activation Coverage") as demo:
    gr.Markdown("# Feature Activation Coverage (FAC)\nHow much of a task's SAE feature space your data covers.")
    with gr.Row():
        data_box = gr.Textbox(label="Data (one text per line)", lines=10)
        anchor_box = gr.Textbox(label="Anchor: texts representative of the task (one per line)", lines=10)
    threshold = gr.Slider(0.1, 2.0, value=fac_metric.DEFAULT_THRESHOLD, step=0.05, label="δ (relative to each feature's scale)")
    button = gr.Button("Compute FAC")
    summary = gr.Markdown()
    details = gr.JSON(label="Result")
    button.click(run, [data_box, anchor_box, threshold], [summary, details])

if __name__ == "__main__":
    demo.launch()
