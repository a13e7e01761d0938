"""The README contract as the trainer checks it: good requests parse, each break is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trainer_service.contract import ContractError, parse_request


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
        "settings.learning_rate: must be above 0"
    )


def test_a_key_twice_in_one_request_is_refused() -> None:
    def twice(b: dict[str, Any]) -> None:
        b["examples"].append(copy.deepcopy(b["examples"][0]))

    assert _broken(twice).startswith("examples[1].idempotency_key")
