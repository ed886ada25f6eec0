"""The on-task rubric for synthesised requests: does a row read like a request a user sends an assistant?

A row is **on-task** when it asks an assistant to do, write or answer something, and is neither
about the synthesis itself nor an assistant's answer. Checked in this order (the first rule that
applies decides, and is the verdict's reason):

1. ``meta``: it talks about the machinery or the prompt it was given ("feature", "language
   model", "fires", "activation", "another one/example", "on a different subject", "like the
   ones before", "the request above/below", "this passage").
2. ``answer``: it opens the way an assistant's reply does ("Sure", "Certainly", "Here is",
   "Here's", "I'm sorry", "As an AI", "I'm here to help", "I'm glad", "Great question").
3. ``request``: it has a request's form: an imperative opening (write, create, list, explain, ...),
   a question mark, "please", a direct ask ("can you", "I need", "help me", ...), or an instruction
   about the answer ("your response", "your answer", "your entire output", ...). On-task.
4. ``no request``: none of that: a story, a statement, a fragment. Off-task.

Validated by hand against a reader's labels on a sample of rows (``docs/synthesis.md`` reports
the agreement). Deliberately simple: it is a measuring stick for rows, not a filter in the product.

>>> rubric("Write a haiku about autumn. Your entire response should be in lowercase.")
(True, 'request')
>>> rubric("The new feature is to help a language model create a story.")
(False, 'meta')
>>> rubric("Sure! Here is a request: write a poem.")
(False, 'answer')
>>> rubric("The park was built in 1872 by a group of engineers.")
(False, 'no request')
"""

from __future__ import annotations

import re

_META = re.compile(r"\b(features?|language models?|fires?|firing|activations?|another (one|example|request)|"
                   r"on a different subject|like the ones before|the ones above|(the|this) (request|passage|prompt) "
                   r"(above|below|you)|requested request)\b", re.IGNORECASE)
_ANSWER = re.compile(r"^\W*(sure|certainly|of course|here is|here's|here are|i'm sorry|i am sorry|as an ai|"
                     r"i'm here to help|i'm glad|great question|absolutely)\b", re.IGNORECASE)
_IMPERATIVE = ("write", "create", "give", "list", "explain", "describe", "summarize", "summarise", "rewrite",
               "generate", "compose", "draft", "make", "tell", "provide", "name", "suggest", "design", "imagine",
               "plan", "translate", "answer", "help", "find", "compare", "pretend", "act", "draw", "produce", "come",
               "recommend", "put", "use", "elaborate", "expand", "brainstorm", "what", "how", "why", "who",
               "which", "when", "where", "is", "are", "can", "could", "would", "should", "do", "does")
_ASK = re.compile(r"(\?|\bplease\b|\bcan you\b|\bcould you\b|\bi need\b|\bi want\b|\bi'd like\b|\bi would like\b|"
                  r"\bhelp me\b|\byour (entire )?(response|answer|output|reply|essay|poem|story)\b)", re.IGNORECASE)


def rubric(text: str) -> tuple[bool, str]:
    """``(on_task, reason)`` for one synthesised request (see the module docstring)."""
    text = text.strip()
    if _META.search(text):
        return False, "meta"
    if _ANSWER.search(text):
        return False, "answer"
    first = re.findall(r"[A-Za-z']+", text[:40].lower())
    if (first and first[0] in _IMPERATIVE) or _ASK.search(text):
        return True, "request"
    return False, "no request"
