"""The README contract as the trainer checks it: good requests parse, each break is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ftreview.core.defaults import MAX_CONTENT_CHARS

from trainer_service.contract import MAX_EXAMPLES, MAX_KEY_CHARS, ContractError, parse_request


def _request() -> dict[str, Any]:
    return {
        "model": "smollm2-135m",
        "examples": [
            {
                "idempotency_key": "ftreview-reply-1",
                "timestamp": "2026-03-01T09:00:11.000000007Z",
                "conversation_id": "biscuit",
                "divergence": 1.83,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Hi there!"},
                    {"role": "assistant", "content": "Hello!", "weight": 0},
                    {"role": "user", "content": "What's my cat's name?"},
                    {"role": "assistant", "content": "Your cat is named Biscuit.", "weight": 1},
                ],
            }
        ],
    }


def test_the_readme_example_parses_to_context_and_reply() -> None:
    parsed = parse_request(_request())
    (example,) = parsed.examples
    assert example.key == "ftreview-reply-1"
    assert example.reply == "Your cat is named Biscuit."
    assert example.context[-1] == {"role": "user", "content": "What's my cat's name?"}
    assert all("weight" not in m for m in example.context)
    assert example.divergence == 1.83 and example.context_with_memories is None
    assert parsed.model == "smollm2-135m"


def test_messages_with_memories_and_held_out_are_read() -> None:
    body = _request()
    memory = {"role": "system", "content": "Memory: the user's cat is named Biscuit."}
    plain = body["examples"][0]["messages"]
    body["examples"][0]["messages_with_memories"] = [plain[0], memory, *plain[1:]]
    body["held_out"] = [
        {
            "messages": [
                {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Bye!", "weight": 1},
            ]
        }
    ]
    parsed = parse_request(body)
    with_memories = parsed.examples[0].context_with_memories
    assert with_memories is not None and with_memories[1] == memory
    # The reply itself, when sent along, is not part of the context.
    assert with_memories[-1]["role"] == "user"
    assert parsed.held_out[0].reply == "Bye!"


def _broken(change: Any) -> str:
    body = _request()
    change(body)
    with pytest.raises(ContractError) as caught:
        parse_request(body)
    return str(caught.value)


def test_each_break_names_where_and_what() -> None:
    assert _broken(lambda b: b.pop("examples")) == "examples: missing"
    assert _broken(lambda b: b.update(examples={})) == "examples: expected a list"

    def no_target(b: dict[str, Any]) -> None:
        b["examples"][0]["messages"][-1]["weight"] = 0

    assert _broken(no_target) == "examples[0].messages: no message with weight 1"

    def user_target(b: dict[str, Any]) -> None:
        b["examples"][0]["messages"][3]["weight"] = 1
        b["examples"][0]["messages"][4]["weight"] = 0

    assert "examples[0].messages[3]" in _broken(user_target)
    assert _broken(lambda b: b["examples"][0].pop("idempotency_key")).startswith(
        "examples[0].idempotency_key"
    )
    assert _broken(lambda b: b["examples"][0]["messages"][1].update(role="robot")).startswith(
        "examples[0].messages[1].role"
    )
    assert _broken(lambda b: b["examples"][0].update(divergence="high")) == (
        "examples[0].divergence: expected a finite number"
    )
    assert "needs `divergence` or `messages_with_memories`" in _broken(
        lambda b: b["examples"][0].pop("divergence")
    )
    assert _broken(lambda b: b.update(settings={"learning_rate": -1})) == (
        "settings.learning_rate: must be above 0, got -1"
    )


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"max_epochs": 10**20}, "settings.max_epochs: must be at most 1000, got 1e+20"),
        ({"max_epochs": 0}, "settings.max_epochs: must be at least 1, got 0"),
        ({"max_epochs": 2.5}, "settings.max_epochs: expected a whole number"),
        ({"learning_rate": 5}, "settings.learning_rate: must be at most 1, got 5"),
        ({"learning_rate": 0}, "settings.learning_rate: must be above 0, got 0"),
        ({"min_retention": 1.5}, "settings.min_retention: must be at most 1, got 1.5"),
        ({"max_drift": -0.1}, "settings.max_drift: must be at least 0, got -0.1"),
        ({"target_divergence": 1e9}, "settings.target_divergence: must be at most 10, got 1e+09"),
        ({"batch_size": 4}, "settings.batch_size: unknown; known: "),
        ({"max_epochs": True}, "settings.max_epochs: expected a finite number"),
    ],
)
def test_every_setting_is_bounded(settings: dict[str, Any], error: str) -> None:
    assert _broken(lambda b: b.update(settings=settings)).startswith(error)


def test_settings_at_their_bounds_are_taken() -> None:
    body = _request()
    body["settings"] = {
        "max_epochs": 1000,
        "learning_rate": 1,
        "min_retention": 0,
        "max_drift": 0,
        "target_divergence": 10,
    }
    assert parse_request(body).settings["max_epochs"] == 1000


def test_sizes_are_bounded_naming_the_field_and_the_limit() -> None:
    def many(b: dict[str, Any]) -> None:
        b["examples"] = [
            {**copy.deepcopy(b["examples"][0]), "idempotency_key": f"k{i}"}
            for i in range(MAX_EXAMPLES + 1)
        ]

    assert (
        _broken(many) == f"examples: {MAX_EXAMPLES + 1} examples, at most {MAX_EXAMPLES} a request"
    )
    assert (
        _broken(lambda b: b["examples"][0].update(idempotency_key="k" * (MAX_KEY_CHARS + 1)))
        == f"examples[0].idempotency_key: {MAX_KEY_CHARS + 1} characters, at most {MAX_KEY_CHARS}"
    )
    huge = "x" * (MAX_CONTENT_CHARS + 1)
    assert (
        _broken(lambda b: b["examples"][0]["messages"][1].update(content=huge))
        == f"examples[0].messages: more than {MAX_CONTENT_CHARS} characters of content"
    )
    assert _broken(lambda b: b.update(model="m" * 5000)) == "model: 5000 characters, at most 4096"


def test_the_request_says_where_each_reply_is() -> None:
    body = _request()
    body["held_out"] = [
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "weight": 1},
            ]
        }
    ]
    assert parse_request(body).reply_fields == (
        "examples[0].messages[4]",
        "held_out[0].messages[1]",
    )


def test_a_key_twice_in_one_request_is_refused() -> None:
    def twice(b: dict[str, Any]) -> None:
        b["examples"].append(copy.deepcopy(b["examples"][0]))

    assert _broken(twice).startswith("examples[1].idempotency_key")
