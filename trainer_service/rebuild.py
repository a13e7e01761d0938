"""A consolidation with no live key left: the untrained adapter replaces the served one.

When every key the served adapter learnt is retracted, nothing is left to train, and the
retracted facts must still stop coming back. An untrained LoRA adapter (its B matrices are
zero) answers exactly as the base model does; promoting it is how the Scorer, which loads
adapters, goes back to the base model.

Invariants: the same rule as any consolidation (`lasting.consolidation_problem`), measured
the same way: the checked keys and the general questions on the served adapter first,
then on the untrained adapter; only an adapter that passes is written, into `staging`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .general import GeneralCheck
from .guard import EpochFigures
from .lasting import Plan, consolidation_problem
from .model import load_base
from .retention import RetentionCheck, starting_model
from .settings import TrainingSettings
from .training import Outcome, _wrap


def untrained_adapter(
    plan: Plan, settings: TrainingSettings, base_folder: Path, device: str, staging: Path
) -> Outcome:
    started = time.monotonic()
    model, tokenizer = load_base(base_folder, device)
    general = GeneralCheck(tokenizer)
    base = general.take_base(model, str(base_folder))
    check = RetentionCheck(tokenizer, plan.checks)
    check.take_base(model)

    def wrap(m: Any) -> Any:
        return _wrap(m, settings)

    model, served_general = starting_model(model, plan, check, general, wrap)
    checked = check.results(model, None)
    kept, known = general.retention(model)
    figures = EpochFigures(0, 0.0, (), 0.0, 0.0, kept=kept, known=known)
    problem = consolidation_problem(checked, served_general, (kept, known))
    if not problem:
        model.save_pretrained(str(staging))
    return Outcome(
        promoted=not problem,
        error=problem,
        before=EpochFigures(0, 0.0, (), 0.0, 0.0, kept=base.kept, known=base.known),
        history=[],
        per_example=[],
        seconds=time.monotonic() - started,
        chosen=figures if not problem else None,
        checked=check.unchanged() if problem else checked,
    )
