"""Character-level highlighting on the real tokenizer's offsets (no model, no services).

Token texts here are cut from the reply by the embedded model's own tokenizer offsets, as the
Scorer cuts them, so byte-level tokens of one character share its span exactly as in a real
candidate. The highlighted text must be the reply, character for character.
"""

from __future__ import annotations

from typing import Any

import pytest
from ftreview.tui.highlight import (
    STRONG_NATS,
    band_background,
    char_divergences,
    highlight_tokens,
    pieces,
)
from ftreview.tui.views import TokenView
from rich.text import Text

from scorer_service.model_files import load_tokenizer
from tests.e2e.tui.harness import UNICODE_REPLY

REPLIES = (
    "你的猫叫小饼干 🐱🍪",
    UNICODE_REPLY,
    "Your cat is named Biscuit.",
    "e\u0301\u0301 stacked marks, then 🇳🇴 a flag",
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_tokenizer(None)


def real_tokens(tokenizer: Any, content: str) -> tuple[list[TokenView], list[tuple[int, int]]]:
    """Tokens with the tokenizer's texts and distinct, rising divergences; their offsets."""
    offsets = tokenizer(content, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    tokens = [TokenView(content[a:b], 0.37 * i - 0.6) for i, (a, b) in enumerate(offsets)]
    return tokens, [(int(a), int(b)) for a, b in offsets]


def style_at(text: Text, index: int) -> str:
    return " ".join(str(span.style) for span in text.spans if span.start <= index < span.end)


@pytest.mark.parametrize("content", REPLIES)
def test_highlighted_text_is_the_reply_exactly(tokenizer: Any, content: str) -> None:
    tokens, _ = real_tokens(tokenizer, content)
    assert len(tokens) > 0
    assert highlight_tokens(tokens, content).plain == content


def test_the_old_garbling_is_gone(tokenizer: Any) -> None:
    content = "你的猫叫小饼干 🐱🍪"
    tokens, _ = real_tokens(tokenizer, content)
    # The tokenizer really does give one character to several tokens (the bug's cause).
    assert "".join(t.text for t in tokens) != content
    assert highlight_tokens(tokens, content).plain == content


@pytest.mark.parametrize("content", REPLIES)
def test_each_character_takes_the_largest_divergence_covering_it(
    tokenizer: Any, content: str
) -> None:
    tokens, offsets = real_tokens(tokenizer, content)
    expected: list[float | None] = [None] * len(content)
    for token, (start, end) in zip(tokens, offsets, strict=True):
        for index in range(start, end):
            current = expected[index]
            expected[index] = (
                token.divergence if current is None else max(current, token.divergence)
            )
    assert char_divergences(tokens, content) == expected

    text = highlight_tokens(tokens, content)
    for index, value in enumerate(expected):
        background = band_background(value) if value is not None else None
        if background is not None:
            assert background in style_at(text, index), (index, content[index], value)


def test_strong_tokens_are_bold_and_underlined_without_colour(tokenizer: Any) -> None:
    content = "Your cat is named Biscuit."
    offsets = tokenizer(content, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    values = [0.0, 0.0, 0.0, 0.1, 2.5, 1.2, 0.3, 0.0]
    assert len(values) == len(offsets), "SmolLM2 splits this reply in 8 tokens"
    tokens = [TokenView(content[a:b], v) for (a, b), v in zip(offsets, values, strict=True)]
    text = highlight_tokens(tokens, content)
    for (start, _end), value in zip(offsets, values, strict=True):
        style = style_at(text, start)
        assert ("bold" in style and "underline" in style) == (value >= STRONG_NATS), (value, style)


def test_numbers_follow_each_run_on_demand(tokenizer: Any) -> None:
    content = "你的猫叫小饼干 🐱🍪"
    tokens, _ = real_tokens(tokenizer, content)
    with_numbers = highlight_tokens(tokens, content, numbers=True).plain
    runs = pieces(tokens, content)
    assert with_numbers.count("[") == len(runs)
    # Remove the numbers and the reply is back, exactly.
    stripped = with_numbers
    for run in runs:
        stripped = stripped.replace(f"[{run.divergence:.1f}]", "", 1)
    assert stripped == content
    # One run per character here: the bytes of 饼 are one run with one number.
    assert [content[p.start : p.end] for p in runs][:2] == ["你", "的"]
