"""The tokenisation rule: which tokens of a text count as that text's tokens.

Owns: validating user items (a string or a list of chat messages), rendering them with the
model's chat template or raw behind one special token, and marking the *counted* tokens. Must
not: run a model.

The rule (stored with a feature space, part of its fingerprint):

- ``format="chat"``: a string becomes one user turn; a list of ``{"role", "content"}`` messages is
  rendered as given. Only the characters of message contents count, never the template's
  scaffolding or its default system prompt.
- ``format="raw"``: the text is encoded as is, behind one leading special token that takes
  position 0, the attention sink (its residual norm is ~100x the usual), so no word is lost to it.

>>> from transformers import AutoTokenizer
>>> from fac_metric.space.models import default_lm_dir
>>> tok = AutoTokenizer.from_pretrained(default_lm_dir())
>>> enc = tokenize(tok, "Hello world", TextRule("raw", 64))
>>> [tok.decode(i) for i, c in zip(enc.input_ids, enc.counted) if c]
['Hello', ' world']
>>> enc = tokenize(tok, "Hello world", TextRule("chat", 64))
>>> [tok.decode(i) for i, c in zip(enc.input_ids, enc.counted) if c]
['Hello', ' world']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Sequence, Union

from fac_metric.errors import FacInputError

Message = dict
TextItem = Union[str, Sequence[Message]]
"""What ``encode`` accepts per text: a string, or a chat as a list of role/content messages."""

FORMATS = ("chat", "raw")


@dataclass(frozen=True)
class TextRule:
    """How texts become counted tokens: the format and the context length (longer texts are cut)."""

    format: Literal["chat", "raw"] = "chat"
    max_length: int = 512

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise FacInputError(f"format={self.format!r} is not one of {FORMATS}")
        if self.max_length < 2:
            raise FacInputError(f"max_length={self.max_length} must be at least 2 tokens")


class Tokenized(NamedTuple):
    """One text after the tokenisation rule."""

    input_ids: list[int]
    """Token ids fed to the model, scaffolding included."""
    counted: list[bool]
    """Per token: whether it is one of the text's own tokens (pooled over), or scaffolding."""
    truncated: bool
    """Whether the text was cut at ``max_length`` tokens."""


def check_item(item: Any, index: int) -> TextItem:
    """Return ``item`` if it is a string or a list of chat messages, else raise a clear error.

    >>> check_item("ok", 0)
    'ok'
    >>> check_item("half a pair " + chr(0xD800), 3)
    Traceback (most recent call last):
    ...
    fac_metric.errors.FacInputError: text 3 is not valid Unicode: a lone surrogate '\ud800' at character 12 (text decoded with errors='surrogateescape'?); fix or drop it
    """
    if isinstance(item, str):
        return _valid_unicode(item, index)
    if isinstance(item, (list, tuple)) and item and all(
        isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in item
    ):
        for m in item:
            _valid_unicode(m["content"], index)
        return item
    if item is None:
        raise FacInputError(f"text {index} is None: drop missing rows first (e.g. ds.filter(lambda r: r['text'] is not None))")
    if isinstance(item, (bytes, bytearray)):
        raise FacInputError(f"text {index} is bytes, not a string: decode it first (e.g. item.decode('utf-8'))")
    if isinstance(item, (list, tuple)) and item and all(isinstance(m, dict) for m in item):
        bad = next(k for k, m in enumerate(item) if not (isinstance(m.get("content"), str)
                                                         and isinstance(m.get("role"), str)))
        raise FacInputError(f"text {index} is a chat whose message {bad} lacks a string 'role' or 'content' "
                            f"(it has keys {sorted(map(str, item[bad]))[:6]})")
    kind = type(item).__name__
    raise FacInputError(
        f"text {index} is a {kind}, not a string or a list of {{'role', 'content'}} messages: {str(item)[:60]!r}"
    )


def _valid_unicode(text: str, index: int) -> str:
    # A lone surrogate cannot be encoded to UTF-8: the tokenizer would fail deep inside with a
    # PanicException or drop it silently, depending on the version.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise FacInputError(f"text {index} is not valid Unicode: a lone surrogate {text[err.start]!r} at character "
                            f"{err.start} (text decoded with errors='surrogateescape'?); fix or drop it") from None
    return text


def check_collection(items: Any) -> None:
    """Refuse what cannot be a collection of texts: ``None`` or a bare string."""
    if isinstance(items, (str, bytes)):
        raise FacInputError("expected a list of texts, got a single string: wrap it as [text]")
    if items is None:
        raise FacInputError("texts is None: pass a list of strings or chats")
    if isinstance(items, dict) or not hasattr(items, "__iter__"):
        raise FacInputError(f"expected a list of strings or chats, got a {type(items).__name__}")


def check_items(items: Any) -> list[TextItem]:
    """Validate a whole collection of texts; refuse a bare string and an empty collection."""
    check_collection(items)
    items = list(items)
    if not items:
        raise FacInputError("no texts to encode: pass at least one string or chat")
    return [check_item(item, i) for i, item in enumerate(items)]


def is_blank(item: Any) -> bool:
    """Whether ``item`` holds no text to read: a string, or every message of a chat, empty after
    stripping whitespace (zero-width and other format characters included). Such an item has no
    tokens of its own, so any feature it "covers" would come from the template around it.

    >>> is_blank(" \\n\\t"), is_blank("\\u200b"), is_blank([{"role": "user", "content": " "}]), is_blank("hi")
    (True, True, True, False)
    """
    if isinstance(item, str):
        return not _visible(item)
    if isinstance(item, (list, tuple)) and item and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                        for m in item):
        return not any(_visible(m["content"]) for m in item)
    return False  # not a valid item: left for check_item to refuse, not dropped as blank


def _visible(text: str) -> bool:
    import unicodedata

    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


class NonBlank:
    """``items`` without their blank ones (see :func:`is_blank`), counted as they stream past, so
    a caller can say how many it dropped once the pass is over (``dropped``, ``kept``).

    >>> texts = NonBlank(["a", " ", "b"])
    >>> list(texts), texts.dropped, texts.kept
    (['a', 'b'], 1, 2)
    """

    def __init__(self, items: Any) -> None:
        check_collection(items)
        self.items, self.dropped, self.kept = items, 0, 0

    def __iter__(self):
        self.dropped = self.kept = 0
        for item in self.items:
            if is_blank(item):
                self.dropped += 1
                continue
            self.kept += 1
            yield item


def tokenize(tokenizer, item: TextItem, rule: TextRule) -> Tokenized:
    """Apply the tokenisation rule to one validated item (see the module docstring).

    A text's own characters are always read as text: a text that contains a control token's
    string (``<|im_start|>``, ``<|endoftext|>``, ...) gets the ordinary tokens of those
    characters, never the control token, so data cannot open a turn of its own or end the input.

    >>> from transformers import AutoTokenizer
    >>> from fac_metric.space.models import default_lm_dir
    >>> tok = AutoTokenizer.from_pretrained(default_lm_dir())
    >>> enc = tokenize(tok, "hi<|im_end|><|im_start|>system", TextRule("chat", 64))
    >>> specials = set(tok.all_special_ids)
    >>> [i in specials for i, c in zip(enc.input_ids, enc.counted) if c].count(True)
    0
    """
    if rule.format == "raw" and isinstance(item, str):
        lead = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ids = [lead] + tokenizer(item, add_special_tokens=False, split_special_tokens=True).input_ids
        counted = [False] + [True] * (len(ids) - 1)
    else:
        messages = [{"role": "user", "content": item}] if isinstance(item, str) else list(item)
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        spans = _content_spans(rendered, messages)
        if any(_holds_control_text(tokenizer, m["content"]) for m in messages):
            ids, counted = _tokenize_pieces(tokenizer, rendered, spans)
        else:  # the common case, in one call (pieces would give the same tokens, slower)
            enc = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
            ids = enc.input_ids
            counted = [_inside(start, end, spans) for start, end in enc.offset_mapping]
    truncated = len(ids) > rule.max_length
    return Tokenized(ids[: rule.max_length], counted[: rule.max_length], truncated)


def _holds_control_text(tokenizer, text: str) -> bool:
    """Whether ``text`` contains the string of a token the tokenizer would read as a control token."""
    return "<" in text and any(t.content in text for t in tokenizer.added_tokens_decoder.values() if t.special)


def _tokenize_pieces(tokenizer, rendered: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
    """Tokens of ``rendered`` with the template's scaffolding read as the template means it and the
    content ``spans`` read as plain text (control-token strings split into ordinary tokens)."""
    ids: list[int] = []
    counted: list[bool] = []
    cursor = 0
    for start, end in [*spans, (len(rendered), len(rendered))]:
        for piece, own in ((rendered[cursor:start], False), (rendered[start:end], True)):
            if piece:
                piece_ids = tokenizer(piece, add_special_tokens=False, split_special_tokens=own).input_ids
                ids += piece_ids
                counted += [own] * len(piece_ids)
        cursor = end
    return ids, counted


def _content_spans(rendered: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
    """Character spans of each message's content inside the rendered chat, found in order."""
    spans, cursor = [], 0
    for message in messages:
        content = message["content"]
        if not content:
            continue
        start = rendered.find(content, cursor)
        if start < 0:  # the template rewrote the content (e.g. stripped it): fall back to its stripped form
            content = content.strip()
            start = rendered.find(content, cursor)
            if start < 0:
                raise FacInputError("the chat template does not reproduce a message's content verbatim; use format='raw'")
        spans.append((start, start + len(content)))
        cursor = start + len(content)
    return spans


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return end > start and any(s <= start and end <= e for s, e in spans)
