"""Knowledge over weeks: does the trainer keep every live fact, drop the facts that changed,
and cost what the new facts cost rather than the history?

Days of work through the trainer's own ledger and worker (the path `ftreview-trainer` runs,
without HTTP), on one half of the fact set (`bench/learning/facts.json`):
- day d: the facts of the split's d-th conversation are accepted as one request and the
  queued jobs run (a learn job continues from the served adapter with a replay sample);
- after every day, each live fact is asked cold (a new conversation, no memories) on the
  served adapter: its own question and its three paraphrases (`bench_learning.ask`);
- then the changes (`bench/learning/changes.json`, each half its own): each changed fact's
  old key is retracted and its new reply sent, the way the Review does when a reviewer
  approves a reply that supersedes a trained one; the jobs that follows run, and the old
  value must stop coming back cold while the new one comes back.

The baseline is in the same run: a consolidation rebuilds the adapter from the base model on
every live fact, which is what every job cost before jobs became incremental (each trained
its new facts plus every earlier one from the base model). s/new fact of the learn jobs is
read against it.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_accumulation.py --split tune
        [--days N | --conversations ID,ID] [--seed 0] [--max-epochs N] [--replay N]
        [--learning-rate LR] [--lost back-off|train-on] [--no-changes] [--home DIR]
        [--json OUT]

`--conversations` runs only the named days (the days of the changed facts, to measure the
changes without the days between them). `--home` keeps the trainer's ledger and adapters
in DIR instead of a temporary folder; given a DIR that already holds days, the run goes on
from the first day whose facts the ledger has not accepted (a job the run was stopped in
runs again from its start, as the trainer does after a crash). So a run stopped at a
session's end can go on, and a later day can be tried under other settings from a copy
of one state (`cp -r`), without paying for the days before it again. Days taken from the
home are not measured again: their rows are in the run that made them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_learning import Conversation, Fact, ask, load  # noqa: E402

from trainer_service.adapters import AdapterVersions  # noqa: E402
from trainer_service.examples import Example  # noqa: E402
from trainer_service.general import Question  # noqa: E402
from trainer_service.ledger import JobLedger  # noqa: E402
from trainer_service.measures import greedy_answers  # noqa: E402
from trainer_service.model import base_model_folder, default_device, load_base  # noqa: E402
from trainer_service.settings import DEFAULTS  # noqa: E402
from trainer_service.worker import JobWorker  # noqa: E402

CHANGES = REPO / "bench" / "learning" / "changes.json"
ANSWER_TOKENS = 48


@dataclass(frozen=True)
class Changed:
    """A fact whose memory now says another value."""

    fact: str
    example: Example
    question: str
    answer: tuple[str, ...]
    old: tuple[str, ...]


def load_changes(facts: dict[str, Fact]) -> list[Changed]:
    """The changes of the facts in `facts` (the split's)."""
    out = []
    for raw in json.loads(CHANGES.read_text(encoding="utf-8"))["changes"]:
        if raw["fact"] not in facts:
            continue
        old = facts[raw["fact"]].example
        system = old.leading_system()
        asked = [{"role": "user", "content": raw["question"]}]
        memories = [{"role": "system", "content": m} for m in raw["memories"]]
        example = Example(
            f"{raw['fact']}-changed",
            [*system, *asked],
            raw["reply"],
            [*system, *memories, *asked],
            None,
            f"{old.conversation_id}-later",
        )
        out.append(
            Changed(raw["fact"], example, raw["question"], tuple(raw["answer"]), tuple(raw["old"]))
        )
    return out


@dataclass
class Day:
    label: str
    job_id: str
    kind: str
    continued_from: str
    new: int
    learnt: int
    epochs: int
    seconds: float
    checked: int | None
    kept: int | None
    state: str
    # The share of the general questions the base model knew still answered right.
    general: float | None = None


class Knowledge:
    """The trainer's ledger, adapters and worker in a folder of their own."""

    def __init__(self, home: Path, seed: int, max_epochs: int, tried: dict[str, Any]) -> None:
        folder, self.name = base_model_folder(None)
        self.folder = folder
        self.device = default_device()
        self.ledger_path = home / "jobs.db"
        self.ledger = JobLedger(self.ledger_path)
        self.versions = AdapterVersions(home)
        settings = replace(DEFAULTS, seed=seed, **tried)
        if max_epochs:
            settings = replace(settings, max_epochs=max_epochs)
        self.worker = JobWorker(
            self.ledger, self.versions, settings, folder, self.device, notify_scorer=None
        )

    def run_queued(self, label: str, new: int) -> list[Day]:
        days = []
        while job_id := self.ledger.next_queued():
            started = time.monotonic()
            self.worker.run_job(job_id)
            seconds = time.monotonic() - started
            job = self.ledger.job(job_id) or {}
            days.append(
                Day(
                    label=label,
                    job_id=job_id,
                    kind=str(job.get("kind", "")),
                    continued_from=str(job.get("continued_from", "")),
                    new=new if job.get("kind") != "consolidate" else 0,
                    learnt=int(job.get("learnt") or 0),
                    epochs=int(job.get("epochs") or 0),
                    seconds=seconds,
                    checked=job.get("facts_checked"),
                    kept=job.get("facts_kept"),
                    state=str(job.get("state", "")),
                    general=job.get("general_retention"),
                )
            )
            # A refused job's reason (the guard's or a consolidation's rule) is its error.
            why = f" ({job['error']})" if job.get("error") else ""
            print(f"    {job_id} {job.get('state')}: {job.get('detail')}{why}", file=sys.stderr)
        return days

    def accepted(self) -> set[str]:
        """Every key the ledger has accepted (a kept home's days)."""
        with contextlib.closing(sqlite3.connect(self.ledger_path)) as db:
            return {str(row[0]) for row in db.execute("SELECT key FROM examples")}

    def model(self) -> tuple[Any, Any]:
        from peft import PeftModel

        model, tokenizer = load_base(self.folder, self.device)
        current = self.versions.current()
        if current is not None:
            model = PeftModel.from_pretrained(model, current["path"])
        return model, tokenizer


def _asked(question: str) -> list[dict[str, str]]:
    from trainer_service.general import SYSTEM

    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def changed_answers(model: Any, tokenizer: Any, changes: list[Changed]) -> list[tuple[bool, bool]]:
    """Per change: (the new value comes back cold, the old value still comes back cold)."""
    said = greedy_answers(model, tokenizer, [_asked(c.question) for c in changes], ANSWER_TOKENS)
    return [
        (Question(c.question, c.answer).right(a), Question(c.question, c.old).right(a))
        for c, a in zip(changes, said, strict=True)
    ]


def _row(split: str, label: str, day: Day, day1: str, own: str, para: str) -> str:
    per_fact = f"{day.seconds / day.new:.0f}" if day.new else "-"
    kept = f"{day.kept}/{day.checked}" if day.checked is not None else "-"
    general = f"{day.general:.1%}" if day.general is not None else "-"
    return (
        f"| {split} | {label} | {day.job_id} ({day.state}) | {day.kind} "
        f"| {day.continued_from or 'base'} | {day.new} | {day.learnt} | {day.epochs} "
        f"| {day.seconds:.0f} | {per_fact} | {kept} | {general} | {day1} | {own} | {para} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "held_out"), required=True)
    parser.add_argument("--days", type=int, default=0, help="only the first N conversations")
    parser.add_argument(
        "--conversations",
        default="",
        help="only these conversations of the split (comma-separated ids, kept in split order)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=0, help="cap each job's epochs")
    parser.add_argument(
        "--replay", type=int, default=DEFAULTS.replay, help="earlier replies a learn job replays"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS.learning_rate,
        help="every job's (from a home's copy: the later days' only)",
    )
    parser.add_argument(
        "--lost",
        choices=("back-off", "train-on"),
        default="back-off" if DEFAULTS.guard.back_off_on_lost_facts else "train-on",
        help="what an epoch that lost earlier facts does (guard.back_off_on_lost_facts)",
    )
    parser.add_argument("--no-changes", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="append the results here")
    parser.add_argument(
        "--home", type=Path, default=None, help="keep the trainer's state here and go on from it"
    )
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, format="    %(message)s", level=logging.WARNING)
    # Every job's epochs (the trainer's log): why a job stopped where it did.
    logging.getLogger("trainer_service.worker").setLevel(logging.INFO)
    conversations: list[Conversation] = load(args.split)
    if args.conversations:
        wanted = set(args.conversations.split(","))
        unknown = wanted - {c.id for c in conversations}
        if unknown:
            parser.error(f"not in the {args.split} split: {', '.join(sorted(unknown))}")
        conversations = [c for c in conversations if c.id in wanted]
    if args.days:
        conversations = conversations[: args.days]
    by_id = {f.id: f for c in conversations for f in c.facts}
    changes = [] if args.no_changes else load_changes(by_id)
    print(
        f"split {args.split}, seed {args.seed}, replay {args.replay}, learning rate "
        f"{args.learning_rate:g}, lost facts: {args.lost}: {len(conversations)} days, "
        f"{len(by_id)} facts, {len(changes)} changes"
    )
    rows: list[Day] = []
    live: list[Fact] = []
    table = [
        "| split | after | job | kind | from | new | learnt | epochs | s | s/new fact "
        "| trainer: kept/checked | general kept | day 1 own cold | live facts own cold "
        "| paraphrases |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- |",
    ]
    record: dict[str, Any] = {
        "split": args.split,
        "seed": args.seed,
        "conversations": [c.id for c in conversations],
        "days": [],
    }
    kept = args.home is not None and (args.home / "jobs.db").exists()
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(str(args.home))
        if args.home is not None
        else tempfile.TemporaryDirectory(prefix="bench-knowledge-")
    ) as scratch:
        guard = replace(DEFAULTS.guard, back_off_on_lost_facts=args.lost == "back-off")
        tried = {"replay": args.replay, "learning_rate": args.learning_rate, "guard": guard}
        knowledge = Knowledge(Path(scratch), args.seed, args.max_epochs, tried)
        accepted = knowledge.accepted() if kept else set()
        for name in knowledge.versions.remove_leftovers():
            print(f"    removed {name}, left by a job that did not finish", file=sys.stderr)
        for job_id in knowledge.ledger.recover():
            print(f"    {job_id} was running when the run stopped: it runs again", file=sys.stderr)
        taken_days = [{f.example.key for f in c.facts} <= accepted for c in conversations]
        # The last day the home holds may be the one the run stopped in: its queued jobs run.
        stopped_in = max((i for i, t in enumerate(taken_days) if t), default=-1)
        for index, conversation in enumerate(conversations):
            examples = [f.example for f in conversation.facts]
            taken = taken_days[index]
            if taken and (index != stopped_in or knowledge.ledger.next_queued() is None):
                live += conversation.facts
                print(f"    {conversation.id}: in {args.home} already", file=sys.stderr)
                continue
            if not taken:  # else: the day the run stopped in; its jobs run again below
                knowledge.ledger.accept(examples, conversation.generic, {})
            days = knowledge.run_queued(conversation.id, len(examples))
            live += conversation.facts
            model, tokenizer = knowledge.model()
            asked = ask(model, tokenizer, live, memories=False)
            own = sum(o for o, _ in asked)
            para = sum(p for _, p in asked)
            first = len(conversations[0].facts)
            day1 = f"{sum(o for o, _ in asked[:first])}/{first}"
            for day in days:
                rows.append(day)
                table.append(
                    _row(
                        args.split,
                        day.label,
                        day,
                        day1,
                        f"{own}/{len(live)}",
                        f"{para}/{3 * len(live)}",
                    )
                )
                print(table[-1], flush=True)
            jobs = [d.__dict__ for d in days]
            record["days"].append(
                {
                    "after": conversation.id,
                    "jobs": jobs,
                    "own": own,
                    "para": para,
                    "live": len(live),
                }
            )
        if changes:
            model, tokenizer = knowledge.model()
            before = changed_answers(model, tokenizer, changes)
            knowledge.ledger.retract([(c.fact, f"superseded by {c.example.key}") for c in changes])
            knowledge.ledger.accept([c.example for c in changes], [], {})
            days = knowledge.run_queued("changes", len(changes))
            live = [f for f in live if f.id not in {c.fact for c in changes}]
            model, tokenizer = knowledge.model()
            after = changed_answers(model, tokenizer, changes)
            asked = ask(model, tokenizer, live, memories=False)
            own = sum(o for o, _ in asked)
            for day in days:
                table.append(_row(args.split, "changes", day, "-", f"{own}/{len(live)}", "-"))
                print(table[-1], flush=True)
            print()
            print("| split | changed fact | old value cold, before | old value cold, after "
                  "| new value cold, after |")  # fmt: skip
            print("| --- | --- | --- | --- | --- |")
            for change, (_, old_before), (new_after, old_after) in zip(
                changes, before, after, strict=True
            ):
                print(
                    f"| {args.split} | {change.fact} | {'yes' if old_before else 'no'} "
                    f"| {'yes' if old_after else 'no'} | {'yes' if new_after else 'no'} |"
                )
            record["changes"] = [
                {"fact": c.fact, "old_before": b[1], "old_after": a[1], "new_after": a[0]}
                for c, b, a in zip(changes, before, after, strict=True)
            ]
    print()
    print("\n".join(table))
    if args.json is not None:
        with args.json.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
