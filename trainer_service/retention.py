"""Whether earlier learnt facts still come back: the retention check of a job's sample of
learnt keys (`lasting.py` draws it), on the model the job starts from and while it trains.

A key *comes back* when the model's greedy answer, asked in the key's own context without
memories, says the key's fact words (`facts.recalls`), the same test that makes a reply
learnt. The fact words are the ones the job that learnt the key measured (stored in the
ledger); a key stored without them (an older ledger) has them read off the base model
here (`measurer.reply_fact`), as that job would have.

Invariants:
- every answer is taken without gradients in eval mode (`measures.greedy_answers`), with a
  budget of the longest checked reply plus the guard's 8 tokens;
- a retracted key is also asked on the base model: one whose fact the base model already
  says cold is not held against a consolidation (nothing can make the model unlearn what
  it knew before any job);
- loading an adapter to continue from, or the served one to measure, never writes to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .facts import recalls
from .general import GeneralCheck
from .lasting import CONSOLIDATE, Checked, Known, Plan, lost_indices
from .measurer import reply_fact
from .measures import greedy_answers, reply_tokens


class RetentionCheck:
    def __init__(self, tokenizer: Any, checks: list[Known]) -> None:
        self.tokenizer = tokenizer
        self.checks = checks
        self.facts: list[tuple[str, ...]] = []
        self.base_says = [False] * len(checks)
        self.before = [False] * len(checks)
        self.before_answers = [""] * len(checks)
        # Per epoch measured: (comes back, answers).
        self.at: dict[int, tuple[list[bool], list[str]]] = {}
        budget = max((reply_tokens(tokenizer, k.example.reply) for k in checks), default=0)
        self.budget = budget + 8

    def take_base(self, model: Any) -> None:
        """On the base model: the fact words not stored, and what the base model says of
        the retracted keys."""
        self.facts = [
            k.fact if k.fact is not None else reply_fact(model, self.tokenizer, k.example)
            for k in self.checks
        ]
        retracted = [i for i, k in enumerate(self.checks) if k.retracted]
        if retracted:
            back, _ = self._answer(model, retracted)
            for i, said in zip(retracted, back, strict=True):
                self.base_says[i] = said

    def take_before(self, model: Any) -> None:
        """On the model the job starts from (or the served adapter, for a consolidation)."""
        self.before, self.before_answers = self.answer(model)

    def answer(self, model: Any) -> tuple[list[bool], list[str]]:
        return self._answer(model, list(range(len(self.checks))))

    def _answer(self, model: Any, which: list[int]) -> tuple[list[bool], list[str]]:
        if not which:
            return [], []
        contexts = [self.checks[i].example.context for i in which]
        answers = greedy_answers(model, self.tokenizer, contexts, self.budget)
        back = [recalls(a, self.facts[i]) for i, a in zip(which, answers, strict=True)]
        return back, answers

    def measure(self, model: Any, epoch: int) -> list[int]:
        """Measure `model` after `epoch`; the positions of the live keys it lost."""
        self.at[epoch] = self.answer(model)
        retracted = [k.retracted for k in self.checks]
        return lost_indices(self.before, self.at[epoch][0], retracted)

    def results(self, model: Any, epoch: int | None) -> list[Checked]:
        """Each key as `epoch` left it (measured then), else as `model` answers now."""
        now, answers = self.at[epoch] if epoch in self.at else self.answer(model)
        return [
            Checked(known, fact, before, back, answer, base_says)
            for known, fact, before, back, answer, base_says in zip(
                self.checks, self.facts, self.before, now, answers, self.base_says, strict=True
            )
        ]

    def unchanged(self) -> list[Checked]:
        """Each key as it was before the job (the served model, when nothing is promoted)."""
        return [
            Checked(known, fact, before, before, answer, base_says)
            for known, fact, before, answer, base_says in zip(
                self.checks, self.facts, self.before, self.before_answers, self.base_says,
                strict=True,
            )
        ]  # fmt: skip


def continue_adapter(model: Any, path: str) -> Any:
    """`model` (the base) with the adapter at `path` on it, to train further."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, path, is_trainable=True)


def measure_served(
    model: Any, path: str, check: RetentionCheck, general: GeneralCheck
) -> tuple[Any, tuple[int, int]]:
    """The served adapter's figures for a consolidation: its answers to the checked keys
    (taken as `check`'s before) and (general questions right, known); then the base model
    back, the adapter's layers taken off again."""
    from peft import PeftModel

    served = PeftModel.from_pretrained(model, path, is_trainable=False)
    check.take_before(served)
    figures = general.retention(served)
    return served.unload(), figures


def starting_model(
    model: Any,
    plan: Plan | None,
    check: RetentionCheck,
    general: GeneralCheck,
    wrap: Callable[[Any], Any],
) -> tuple[Any, tuple[int, int] | None]:
    """(the model to train, the served adapter's general figures for a consolidation):
    the served adapter to continue, else `wrap(base)`; `check`'s before measured on the
    model the job starts from (a consolidation: on the served adapter, when there is one).
    A continued adapter becomes `general`'s drift reference (`GeneralCheck.rebase`), its
    own drift from the base model kept in `general.start_drift`."""
    if plan is not None and plan.continue_from is not None:
        model = continue_adapter(model, plan.continue_from[1])
        check.take_before(model)
        general.start_drift = general.rebase(model)
        return model, None
    served_general = None
    if plan is not None and plan.kind == CONSOLIDATE and plan.served is not None:
        model, served_general = measure_served(model, plan.served[1], check, general)
    else:
        check.take_before(model)
    return wrap(model), served_general
