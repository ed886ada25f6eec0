"""The tokenisation rule: only a text's own tokens count; scaffolding, the sink and padding never do."""

import pytest

from fac_metric.errors import FacInputError
from fac_metric.space.tokenization import TextRule, check_items, tokenize


@pytest.fixture(scope="module")
def tok(space):
    return space.reader.tokenizer


def counted_text(tok, enc):
    return tok.decode([i for i, c in zip(enc.input_ids, enc.counted) if c])


def test_chat_counts_only_message_content(tok):
    enc = tokenize(tok, "Name three rivers.", TextRule("chat", 128))
    assert counted_text(tok, enc) == "Name three rivers."
    # the default system prompt and the template's markers are there, but not counted
    assert "SmolLM" in tok.decode(enc.input_ids)
    assert not enc.counted[0]


def test_chat_with_several_messages_counts_every_content(tok):
    chat = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello, how can I help?"}]
    enc = tokenize(tok, chat, TextRule("chat", 128))
    assert counted_text(tok, enc) == "Hi thereHello, how can I help?"


def test_raw_puts_one_special_token_at_position_zero(tok):
    enc = tokenize(tok, "The river flows.", TextRule("raw", 128))
    assert enc.input_ids[0] == tok.bos_token_id and enc.counted[0] is False
    assert all(enc.counted[1:]) and counted_text(tok, enc) == "The river flows."


def test_long_text_is_truncated_and_flagged(tok):
    enc = tokenize(tok, "word " * 500, TextRule("raw", 64))
    assert enc.truncated and len(enc.input_ids) == 64


@pytest.mark.parametrize(
    "bad, message",
    [([], "no texts"), (None, "None"), ("just a string", "single string"), (["ok", None], "text 1 is None"),
     (["ok", 3], "text 1 is a int"), ([[{"role": "user"}]], "text 0")],
)
def test_bad_items_get_clear_errors(bad, message):
    with pytest.raises(FacInputError, match=message):
        check_items(bad)
