"""The variants the trainer adds to a job's examples: the question asked cold."""

from __future__ import annotations

from trainer_service.examples import Example, JobInput
from trainer_service.settings import TrainingSettings
from trainer_service.training import training_examples

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CAT = {"role": "system", "content": "Memory: the user's cat is named Biscuit."}
HI = [{"role": "user", "content": "Hi there!"}, {"role": "assistant", "content": "Hello!"}]
ASK = {"role": "user", "content": "What's my cat's name?"}


def _example(key: str = "cat-5") -> Example:
    return Example(
        key=key,
        context=[SYSTEM, *HI, ASK],
        reply="Your cat is named Biscuit.",
        context_with_memories=[SYSTEM, CAT, *HI, ASK],
        conversation_id="cat",
    )


def test_the_cold_variant_keeps_the_system_messages_and_the_last_question_only() -> None:
    cold = _example().cold()
    assert cold is not None
    assert cold.context == [SYSTEM, ASK]
    assert (cold.key, cold.reply, cold.context_with_memories) == (
        "cat-5",
        "Your cat is named Biscuit.",
        None,
    )


def test_a_context_that_is_already_cold_has_no_cold_variant() -> None:
    assert Example("k", [SYSTEM, ASK], "Your cat is named Biscuit.").cold() is None
    assert Example("k", [SYSTEM], "Hello.").cold() is None


def test_the_settings_choose_the_variants_of_an_epoch() -> None:
    job = JobInput(examples=[_example()], replay=[_example("old")])
    plain = training_examples(job, TrainingSettings(cold_variants=False))
    assert [e.key for e in plain] == ["cat-5", "old"]
    cold = training_examples(job, TrainingSettings(cold_variants=True))
    assert [(e.key, len(e.context)) for e in cold] == [
        ("cat-5", 4),
        ("old", 4),
        ("cat-5", 2),
        ("old", 2),
    ]
