"""LLM backends behind one ``Generator`` interface, and the on-disk cache of their answers.

Owns: the neutral base (``base.py``: prompts, seeding, stats, ``Generator``), the local backend
(``local.py``: a causal LM in this process, with its own seeded sampling loop), the HTTP backend
(``http.py``: OpenAI-compatible servers, concurrent, with retries), ``get_generator``
(``registry.py``), and ``answer_cache.py`` (append-only JSONL answers keyed by what was asked).
Must not: know about SAEs, FAC or datasets.
"""

from fac_metric._lazy import lazy_names

_B = "fac_metric.llm.base"
_C = "fac_metric.llm.answer_cache"
__getattr__, __dir__ = lazy_names(__name__, {
    "Generator": _B, "GeneratorError": _B, "GenerationStats": _B, "Sampling": _B, "completion_seed": _B,
    "Prompt": _B, "OnAnswer": _B, "LocalGenerator": "fac_metric.llm.local", "HTTPGenerator": "fac_metric.llm.http",
    "get_generator": "fac_metric.llm.registry", "JsonlCache": _C, "llm_cache": _C, "cache_key": _C,
})
__all__ = sorted(__dir__())
