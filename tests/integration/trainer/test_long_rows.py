"""A reply late in a long conversation is trained with its reply whole: its row loses the
oldest turns, never the reply, its question or its system messages (`lengths.trimmed`).

Measured with the embedded model's own tokenizer and chat template, counting the row as TRL
does for a prompt–completion row (the template over prompt and completion together)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer_service.examples import Chat, Example
from trainer_service.lengths import ROW_TOKENS, training_row, trimmed
from trainer_service.model import base_model_folder, load_tokenizer

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
QUESTION = {"role": "user", "content": "What is my cat called again?"}
REPLY = "Your cat is named Biscuit."


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    folder, _ = base_model_folder(None)
    return load_tokenizer(folder)


def _chat(turns: int, words: int = 20) -> Chat:
    chat: Chat = [dict(SYSTEM)]
    for i in range(turns):
        chat.append({"role": "user", "content": f"Turn {i}: " + "tell me more " * words})
        chat.append({"role": "assistant", "content": f"Answer {i}: " + "it is so " * words})
    return [*chat, dict(QUESTION)]


def _row_tokens(tokenizer: Any, row: dict[str, Any]) -> int:
    """The row's tokens as TRL builds a conversational prompt–completion row."""
    text = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_a_long_conversation_keeps_its_reply_question_and_system_and_fits(
    tokenizer: Any,
) -> None:
    context = _chat(80)
    completion = [{"role": "assistant", "content": REPLY}]
    whole = _row_tokens(tokenizer, {"prompt": context, "completion": completion})
    assert whole > 2 * ROW_TOKENS  # the row untrimmed: TRL would cut it from its end, the reply

    row = training_row(Example("k", context, REPLY), tokenizer)
    prompt = row["prompt"]
    assert row["completion"] == completion
    assert _row_tokens(tokenizer, row) <= ROW_TOKENS
    assert prompt[0] == SYSTEM and prompt[-1] == QUESTION
    assert prompt[1]["role"] == "user"  # it goes on from a question, not from an answer
    # The newest turns are kept, as many as fit: one more exchange would not.
    assert prompt[1:] == context[len(context) - len(prompt) + 1 :]
    longer = [SYSTEM, *context[len(context) - len(prompt) - 1 :]]
    assert _row_tokens(tokenizer, {"prompt": longer, "completion": row["completion"]}) > ROW_TOKENS


def test_a_row_that_fits_is_left_as_it_is(tokenizer: Any) -> None:
    context = _chat(3)
    assert trimmed(tokenizer, context, REPLY) is context


def test_a_row_that_cannot_fit_keeps_its_system_messages_and_last_message(
    tokenizer: Any,
) -> None:
    huge = {"role": "user", "content": "Remember all of this: " + "a long note " * 900}
    context = [dict(SYSTEM), *_chat(5)[1:-1], huge]
    assert trimmed(tokenizer, context, REPLY) == [SYSTEM, huge]


@settings(max_examples=40, deadline=None)
@given(
    turns=st.lists(st.integers(min_value=0, max_value=120), min_size=0, max_size=30),
    budget=st.integers(min_value=64, max_value=800),
)
def test_trimming_keeps_a_suffix_of_whole_turns_and_fits_whenever_it_can(
    tokenizer: Any, turns: list[int], budget: int
) -> None:
    context: Chat = [dict(SYSTEM)]
    for i, words in enumerate(turns):
        role = "user" if i % 2 == 0 else "assistant"
        context.append({"role": role, "content": f"{role} {i} " + "word " * words})
    context.append(dict(QUESTION))
    kept = trimmed(tokenizer, context, REPLY, budget)
    fits = {"prompt": kept, "completion": [{"role": "assistant", "content": REPLY}]}
    smallest = {"prompt": [SYSTEM, QUESTION], "completion": fits["completion"]}
    assert kept[0] == SYSTEM and kept[-1] == QUESTION
    assert kept[1:] == context[len(context) - len(kept) + 1 :]
    assert len(kept) == 2 or kept[1]["role"] == "user" or kept is context
    if _row_tokens(tokenizer, smallest) <= budget - 4:
        assert _row_tokens(tokenizer, fits) <= budget
