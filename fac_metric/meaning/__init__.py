"""Meaning: what features are about and where they fire, for people and for prompts.

Owns: top-activating spans (``TopSpans``, collected in one streaming pass), LLM-free summaries
and LLM explanations of features (checked by a second pass), rendering spans for prompts, and
the table of relevant features with its form check, the reports of ``fac score`` / ``fac explain`` (Markdown, HTML, JSON, plot). Must not: compute
FAC or choose relevant features (``fac_metric.measure``); it reads results, never changes them.
"""

from fac_metric._lazy import lazy_names

_EX = "fac_metric.meaning.explain"
_SP = "fac_metric.meaning.spans"
_RE = "fac_metric.meaning.report"
__getattr__, __dir__ = lazy_names(__name__, {
    "Span": _SP, "TopSpans": _SP, "collect_spans": _SP, "SPAN_CHUNK": _SP, "SPAN_TOKENS": _SP,
    "render_spans": _EX, "feature_spans": _EX, "explain_features": _EX, "top_spans": _EX, "add_spans": _EX,
    "summarize": _EX, "CANNOT_TELL": _EX,
    "relevant_table": "fac_metric.meaning.relevant", "form_warning": "fac_metric.meaning.relevant",
    "measurement_result": "fac_metric.meaning.relevant",
    "feature_is_form": "fac_metric.meaning.relevant",
    "summary_line": _RE, "write_report": _RE, "check_writable_folder": _RE, "result_dict": _RE, "top_missing": _RE, "baseline_rows": _RE,
})
__all__ = sorted(__dir__())
