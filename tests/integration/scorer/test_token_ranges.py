"""build_token_ids on real tokenizers: the embedded one and other chat templates built here
(nothing downloads). Decoding a reply's range must give back exactly its content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ftreview.conversations import load_conversations, parse_conversation
from transformers import AutoTokenizer

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import Variant, flatten
from scorer_service.tokenization import build_token_ids

# A Gemma-style template: no system role, different markers, the model name "model".
TURN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' "
    "else m['role'] %}<start_of_turn>{{ role }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# A template that rewrites content (trims it): the splice check must notice.
TRIMMING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n"
    "{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer_dir(embedded_backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    embedded_backend.tokenizer.save_pretrained(folder)
    return folder


def _tokenizer(folder: Path, template: str, specials: tuple[str, ...] = ()) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    tokenizer.chat_template = template
    if specials:
        # As in the models that use such a template, its markers are single special tokens.
        tokenizer.add_special_tokens({"additional_special_tokens": list(specials)})
    return tokenizer


def _assert_ranges_decode_to_contents(conversation: Any, tokenizer: Any) -> int:
    messages = flatten(conversation)
    checked = 0
    for variant in Variant:
        tokenized = build_token_ids(messages, tokenizer, variant)
        replies = [m for m in messages if m.is_reply]
        assert [r.message for r in tokenized.replies] == replies
        for reply in tokenized.replies:
            assert not reply.problem, reply.problem
            ids = tokenized.token_ids[reply.start : reply.end]
            assert tokenizer.decode(ids) == reply.message.content
            checked += 1
    return checked


def test_embedded_tokenizer_ranges_decode_exactly(
    embedded_backend: LocalBackend, fixtures_dir: Path
) -> None:
    checked = 0
    for path in sorted(fixtures_dir.glob("*.json")):
        for conversation in load_conversations(path):
            checked += _assert_ranges_decode_to_contents(conversation, embedded_backend.tokenizer)
    assert checked >= 16


def test_other_chat_template_ranges_decode_exactly(tokenizer_dir: Path, fixtures_dir: Path) -> None:
    tokenizer = _tokenizer(tokenizer_dir, TURN_TEMPLATE, ("<start_of_turn>", "<end_of_turn>"))
    (conversation,) = load_conversations(fixtures_dir / "build-server.json")
    assert (
        "<start_of_turn>model\n"
        in build_token_ids(flatten(conversation), tokenizer, Variant.WITH_MEMORIES).text
    )
    assert _assert_ranges_decode_to_contents(conversation, tokenizer) == 8


def test_reply_equal_to_a_template_marker_is_found_in_its_own_place(
    embedded_backend: LocalBackend,
) -> None:
    conversation = parse_conversation(
        [
            {"role": "user", "content": "Say the word user."},
            {"role": "assistant", "content": "user", "timestamp": 5},
            {"role": "user", "content": "assistant"},
            {"role": "assistant", "content": "assistant", "timestamp": 6},
        ]
    )
    tokenized = build_token_ids(
        flatten(conversation), embedded_backend.tokenizer, Variant.WITH_MEMORIES
    )
    for reply in tokenized.replies:
        # The content sits right after "<|im_start|>assistant\n", not inside a marker.
        start = tokenized.offsets[reply.start][0]
        assert tokenized.text[:start].endswith("<|im_start|>assistant\n")


def test_reply_glued_to_a_plain_text_marker_is_reported(tokenizer_dir: Path) -> None:
    # Without special tokens, "?" and the "<" of "<end_of_turn>" may merge into one token:
    # the reply has no clean end, and scoring it would score part of the marker.
    tokenizer = _tokenizer(tokenizer_dir, TURN_TEMPLATE)
    conversation = parse_conversation(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "How can I help you today?", "timestamp": 1},
        ]
    )
    tokenized = build_token_ids(flatten(conversation), tokenizer, Variant.WITH_MEMORIES)
    (reply,) = tokenized.replies
    assert "token boundary" in reply.problem and reply.start == reply.end == 0


def test_template_that_rewrites_a_reply_is_reported_not_scored(tokenizer_dir: Path) -> None:
    tokenizer = _tokenizer(tokenizer_dir, TRIMMING_TEMPLATE)
    conversation = parse_conversation(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "  Hello there.  ", "timestamp": 1},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye.", "timestamp": 2},
        ]
    )
    tokenized = build_token_ids(flatten(conversation), tokenizer, Variant.WITH_MEMORIES)
    rewritten, intact = tokenized.replies
    assert rewritten.problem == "the chat template changed its text"
    assert not intact.problem
    assert tokenizer.decode(tokenized.token_ids[intact.start : intact.end]) == "Goodbye."


def test_template_is_rendered_a_constant_number_of_times(embedded_backend: LocalBackend) -> None:
    nodes: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for turn in range(40):
        nodes.append({"role": "user", "content": f"Question {turn}?"})
        nodes.append({"role": "assistant", "content": f"Answer {turn}.", "timestamp": turn + 1})
    messages = flatten(parse_conversation(nodes))
    tokenizer = embedded_backend.tokenizer
    calls = {"render": 0, "tokenize": 0}

    class Counting:
        def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
            calls["render"] += 1
            return tokenizer.apply_chat_template(conversation, **kwargs)

        def __call__(self, text: str, **kwargs: Any) -> Any:
            calls["tokenize"] += 1
            return tokenizer(text, **kwargs)

        def decode(self, ids: Any, **kwargs: Any) -> str:
            return str(tokenizer.decode(ids, **kwargs))

    tokenized = build_token_ids(messages, Counting(), Variant.WITH_MEMORIES)
    assert len(tokenized.replies) == 40
    assert calls == {"render": 2, "tokenize": 1}
