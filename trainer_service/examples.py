"""Training examples as the trainer keeps them, built from the README's contract.

Invariant: an `Example` is a context without memories ending where the reply starts, the
reply (the only training target), and optionally the same context with the memories in
(for the guard's divergence). Every example in the trainer went through `contract.py`, so
these fields are always well formed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Example:
    key: str
    context: Chat
    reply: str
    # The same context with the memory messages in (contract addition), or None.
    context_with_memories: Chat | None = None
    # The divergence the Review measured, nats/token, or None.
    divergence: float | None = None
    conversation_id: str = ""

    def with_question(self, question: str) -> Example:
        """The same example asked with another last user message (self-study)."""
        context = [dict(m) for m in self.context]
        for message in reversed(context):
            if message["role"] == "user":
                message["content"] = question
                break
        return Example(self.key, context, self.reply, None, None, self.conversation_id)

    def cold(self) -> Example | None:
        """The same question asked in a new conversation: the context's leading system
        messages and its last user message only (how a user asks again later, with no
        earlier turns to lean on). None when the context is that already."""
        question = self.last_question()
        if not question:
            return None
        cold = self.asked_anew(question, self.reply)
        return None if cold.context == self.context else cold

    def asked_anew(self, question: str, reply: str) -> Example:
        """`question` answered by `reply` in a new conversation: the context's leading
        system messages, then the question."""
        context = [*self.leading_system(), {"role": "user", "content": question}]
        return Example(self.key, context, reply, None, None, self.conversation_id)

    def leading_system(self) -> Chat:
        """The context's system messages before its first other message."""
        leading: Chat = []
        for message in self.context:
            if message["role"] != "system":
                break
            leading.append(dict(message))
        return leading

    def last_question(self) -> str:
        for message in reversed(self.context):
            if message["role"] == "user":
                return message["content"]
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "context": self.context,
            "reply": self.reply,
            "context_with_memories": self.context_with_memories,
            "divergence": self.divergence,
            "conversation_id": self.conversation_id,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Example:
        return Example(
            key=data["key"],
            context=data["context"],
            reply=data["reply"],
            context_with_memories=data.get("context_with_memories"),
            divergence=data.get("divergence"),
            conversation_id=data.get("conversation_id", ""),
        )


@dataclass(frozen=True)
class HeldOut:
    """A generic reply (no memories) whose log-likelihood must not fall: the guard's (b)."""

    context: Chat
    reply: str

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "reply": self.reply}

    @staticmethod
    def from_json(data: dict[str, Any]) -> HeldOut:
        return HeldOut(context=data["context"], reply=data["reply"])


_SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def _plain(question: str, reply: str) -> HeldOut:
    return HeldOut([dict(_SYSTEM), {"role": "user", "content": question}], reply)


# Used when no request ever sent `held_out`: plain replies any assistant should keep giving.
BUILT_IN_GENERIC: tuple[HeldOut, ...] = (
    _plain("Thanks, bye.", "You're welcome, goodbye!"),
    _plain("Hi there!", "Hello! How can I help you today?"),
    _plain("How many days are in a week?", "There are seven days in a week."),
    _plain("What is the capital of France?", "The capital of France is Paris."),
    _plain("What colour is the sky on a clear day?", "On a clear day the sky is blue."),
    _plain(
        "Can you recommend a good way to relax?",
        "Taking a short walk outside is a good way to relax.",
    ),
)


@dataclass
class JobInput:
    """What one job trains on: its own examples first, then the replay of earlier ones."""

    examples: list[Example]
    replay: list[Example] = field(default_factory=list)
    held_out: list[HeldOut] = field(default_factory=list)
