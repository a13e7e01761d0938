"""Does the loop learn facts nobody tuned it on? The fact set's two halves, per setting and seed.

`bench/learning/facts.json` holds conversations whose replies state invented facts, each
with a standalone question and three paraphrased questions that are never trained, split by
conversation into a tuning half and a held-out half before anything was tuned. Defaults are
chosen on `--split tune`; `--split held_out` is read once per setting, to report.

Per job (a "day": `--per-job` conversations, trained together from the base model, the way
`ftreview send` hands a day's approved replies to the trainer), on the model it promoted
(the base model when it promoted nothing):
- learnt: the replies the guard marked learnt (partial promotion returns the others);
- own: the fact's own question asked cold (a new conversation, no memories) answered with
  the fact (an accepted answer among the answer's words, `general.Question.right`);
- para: the same for its three paraphrased questions;
- general: the guard's retention of the general questions the base model got right, and
  its drift (mean KL(base ‖ tuned) per token), at the promoted epoch;
- s/fact: the job's wall time over its facts.
Beside them, once per split, what the base model does with the memories in its prompt
(`read`: the same questions, the memories as system messages): knowing against reading.

`--calibrate EPOCHS` trains every job unguarded for EPOCHS epochs instead and prints, per
epoch, the replies learnt, the drift and the general questions still right: the largest
drift under which every epoch kept 98% of them is where the guard's floor
(`max_drift`) belongs. Calibrate on the tuning half only.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_learning.py --split tune
        [--only NAME ...] [--seeds 0 ...] [--per-job 2] [--limit N] [--conversation ID ...]
        [--json OUT]
        [--calibrate EPOCHS]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainer_service.examples import Chat, Example, HeldOut, JobInput  # noqa: E402
from trainer_service.general import SYSTEM, Question  # noqa: E402
from trainer_service.guard import GuardSettings  # noqa: E402
from trainer_service.measures import greedy_answers  # noqa: E402
from trainer_service.model import base_model_folder, default_device, load_base  # noqa: E402
from trainer_service.settings import DEFAULTS, TrainingSettings  # noqa: E402
from trainer_service.training import train_job  # noqa: E402

FACTS = REPO / "bench" / "learning" / "facts.json"
ANSWER_TOKENS = 48

SETTINGS: dict[str, TrainingSettings] = {
    "defaults": DEFAULTS,
    "former defaults (no self-study, anchor 4)": replace(DEFAULTS, self_study=0, anchor=4.0),
    "no self-study": replace(DEFAULTS, self_study=0),
    "self-study 2, anchor 4": replace(DEFAULTS, anchor=4.0),
    "no memory statements": replace(DEFAULTS, memory_statements=False),
    "teacher answers 2": replace(DEFAULTS, teacher_answers=2),
    "no anchor": replace(DEFAULTS, anchor=0.0),
    "anchor on questions": replace(DEFAULTS, anchor_questions=True),
    "no neighbours": replace(DEFAULTS, neighbours=False),
    "neighbours and their subjects": replace(DEFAULTS, neighbour_subjects=True),
    "learnt when asked anew too": replace(DEFAULTS, learnt_cold=True),
    "statements asked what they say": replace(DEFAULTS, what_questions=True),
    "wide statements": replace(DEFAULTS, wide_statements=True),
    "named statements": replace(DEFAULTS, named_statements=True),
    # The general-knowledge target as the guard's limit (the default, 0.9, was
    # chosen before the anchor and the neighbours kept general answers near 98%).
    "retention floor 98%": replace(DEFAULTS, guard=GuardSettings(min_retention=0.98)),
    "hard rehearsal, no anchor": replace(DEFAULTS, anchor=0.0, rehearsal=1.0),
    "attention only": replace(DEFAULTS, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")),
    # Facts are thought to sit in the MLPs (the feed-forward layers as key-value memories):
    # an adapter on them alone leaves the attention, and perhaps more general answers, as
    # the base model had them.
    "MLP only": replace(DEFAULTS, target_modules=("gate_proj", "up_proj", "down_proj")),
    # Smaller ranks, alpha kept at twice the rank (the defaults' scale).
    "rank 4": replace(DEFAULTS, rank=4, alpha=8),
    "rank 8": replace(DEFAULTS, rank=8, alpha=16),
    # The learning rate was chosen on the fixture facts (bench_training.py), never on this
    # set: half of it, with the same epochs, moves the weights less per step.
    "learning rate 5e-4": replace(DEFAULTS, learning_rate=5e-4),
    # The anchor twice as heavy: general answers are where the held-out half misses most.
    "anchor 16": replace(DEFAULTS, anchor=16.0),
}


@dataclass(frozen=True)
class Fact:
    id: str
    example: Example
    memories: tuple[str, ...]
    answers: tuple[str, ...]
    question: str
    paraphrases: tuple[str, ...]


@dataclass
class Conversation:
    id: str
    facts: list[Fact]
    generic: list[HeldOut] = field(default_factory=list)


def _flatten(nodes: list[dict[str, Any]], memory: bool = False) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    for node in nodes:
        if "children" in node:
            out += _flatten(node["children"], memory or bool(node.get("memory")))
        else:
            out.append((node["role"], node["content"], memory or bool(node.get("memory"))))
    return out


def load(split: str) -> list[Conversation]:
    data = json.loads(FACTS.read_text(encoding="utf-8"))
    out = []
    for raw in data["conversations"]:
        if raw["split"] != split:
            continue
        messages = _flatten(raw["nodes"])
        stated = {f["reply"] for f in raw["facts"]}
        conversation = Conversation(raw["id"], [])
        for at, (role, content, memory) in enumerate(messages):
            if role != "assistant" or memory:
                continue
            plain: Chat = [{"role": r, "content": c} for r, c, m in messages[:at] if not m]
            full: Chat = [{"role": r, "content": c} for r, c, _ in messages[:at]]
            if content not in stated:
                conversation.generic.append(HeldOut(plain, content))
                continue
            fact = next(f for f in raw["facts"] if f["reply"] == content)
            example = Example(fact["id"], plain, content, full, None, raw["id"])
            conversation.facts.append(
                Fact(
                    fact["id"], example, tuple(fact["memories"]), tuple(fact["answer"]),
                    fact["question"], tuple(fact["paraphrases"]),
                )
            )  # fmt: skip
        out.append(conversation)
    return out


_shown: list[str] = [""]


def _progress(progress: Any) -> None:
    """Each epoch's figures on stderr, as the job ledger would show them."""
    if progress.detail.startswith(("epoch", "training")) and progress.detail != _shown[0]:
        _shown[0] = progress.detail
        print(f"    {progress.detail}", file=sys.stderr, flush=True)


def _asked(question: str, memories: tuple[str, ...] = ()) -> Chat:
    system = [{"role": "system", "content": SYSTEM}]
    return (
        system
        + [{"role": "system", "content": m} for m in memories]
        + [{"role": "user", "content": question}]
    )


def ask(model: Any, tokenizer: Any, facts: list[Fact], memories: bool) -> list[tuple[bool, int]]:
    """Per fact: (own question answered with the fact, paraphrases answered with it)."""
    contexts = []
    for fact in facts:
        given = fact.memories if memories else ()
        contexts += [_asked(q, given) for q in (fact.question, *fact.paraphrases)]
    answers = greedy_answers(model, tokenizer, contexts, ANSWER_TOKENS)
    out = []
    for i, fact in enumerate(facts):
        said = answers[i * 4 : i * 4 + 4]
        right = [Question(fact.question, fact.answers).right(a) for a in said]
        out.append((right[0], sum(right[1:])))
    return out


@dataclass
class JobResult:
    facts: int
    learnt: int
    own: int
    para: int
    promoted: bool
    kept: int | None
    known: int
    drift: float | None
    seconds: float
    epochs: int


def run_job(
    days: list[Conversation], settings: TrainingSettings, folder: Path, device: str
) -> tuple[JobResult, list[tuple[str, bool, bool, int, str]]]:
    from peft import PeftModel

    facts = [f for c in days for f in c.facts]
    job = JobInput([f.example for f in facts], [], [h for c in days for h in c.generic])
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / "adapter"
        started = time.monotonic()
        outcome = train_job(job, settings, folder, device, staging, _progress)
        seconds = time.monotonic() - started
        model, tokenizer = load_base(folder, device)
        if outcome.promoted:
            model = PeftModel.from_pretrained(model, str(staging))
        asked = ask(model, tokenizer, facts, memories=False)
    after = outcome.after
    learnt = {p.key: p.learnt for p in outcome.per_example}
    answers = {p.key: p.answer_after for p in outcome.per_example}
    rows = [
        (f.id, learnt[f.id], own, para, answers[f.id])
        for f, (own, para) in zip(facts, asked, strict=True)
    ]
    result = JobResult(
        facts=len(facts),
        learnt=sum(learnt.values()),
        own=sum(own for own, _ in asked),
        para=sum(para for _, para in asked),
        promoted=outcome.promoted,
        kept=after.kept if after else None,
        known=after.known if after else 0,
        drift=after.drift if after else None,
        seconds=seconds,
        epochs=len(outcome.history),
    )
    return result, rows


def calibrate(
    conversations: list[Conversation], args: argparse.Namespace, folder: Path, device: str
) -> None:
    settings = replace(
        SETTINGS[(args.only or ["defaults"])[0]],
        guarded=False,
        max_epochs=args.calibrate,
        seed=args.seeds[0],
    )
    points: list[tuple[float, float]] = []
    print("| job | epoch | learnt | divergence | drift | general kept |")
    print("| --- | --- | --- | --- | --- | --- |")
    for at in range(0, len(conversations), args.per_job):
        days = conversations[at : at + args.per_job]
        facts = [f for c in days for f in c.facts]
        job = JobInput([f.example for f in facts], [], [h for c in days for h in c.generic])
        with tempfile.TemporaryDirectory() as scratch:
            outcome = train_job(job, settings, folder, device, Path(scratch) / "adapter", _progress)
        for f in outcome.history:
            retention = f.retention if f.retention is not None else float("nan")
            points.append((f.drift, retention))
            print(
                f"| {days[0].id} | {f.epoch} | {f.recalled}/{f.replies} | {f.divergence:.2f} "
                f"| {f.drift:.3f} | {f.kept}/{f.known} ({retention:.1%}) |",
                flush=True,
            )
    points.sort()
    floor = 0.0
    for drift, retention in points:
        if retention < 0.98:
            break
        floor = drift
    print(f"\nevery epoch with drift <= {floor:.3f} kept >= 98% of the general questions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "held_out"), required=True)
    parser.add_argument("--only", nargs="*", default=None, help="setting names to run")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--per-job", type=int, default=2, help="conversations per job")
    parser.add_argument("--limit", type=int, default=0, help="only the first N conversations")
    parser.add_argument("--conversation", nargs="*", default=None, help="only these ids")
    parser.add_argument("--json", type=Path, default=None, help="append results here")
    parser.add_argument("--calibrate", type=int, default=0, metavar="EPOCHS")
    parser.add_argument("--max-epochs", type=int, default=0, help="cap each job's epochs")
    args = parser.parse_args()
    # The general questions an epoch answered wrong, as the guard measured them.
    logging.basicConfig(stream=sys.stderr, format="    %(message)s")
    logging.getLogger("trainer_service").setLevel(logging.DEBUG)
    folder, name = base_model_folder(None)
    device = default_device()
    conversations = load(args.split)
    if args.conversation:
        unknown = set(args.conversation) - {c.id for c in conversations}
        if unknown:
            parser.error(f"not in split {args.split}: {', '.join(sorted(unknown))}")
        conversations = [c for c in conversations if c.id in args.conversation]
    if args.limit:
        conversations = conversations[: args.limit]
    facts = [f for c in conversations for f in c.facts]
    print(f"{name} on {device}; split {args.split}: {len(conversations)} conversations, "
          f"{len(facts)} facts, {args.per_job} per job")  # fmt: skip
    if args.calibrate:
        calibrate(conversations, args, folder, device)
        return
    model, tokenizer = load_base(folder, device)
    for label, memories in (("base, no memories", False), ("base, memories in prompt", True)):
        asked = ask(model, tokenizer, facts, memories)
        own = sum(o for o, _ in asked)
        para = sum(p for _, p in asked)
        print(f"{label}: own {own}/{len(facts)}, paraphrases {para}/{3 * len(facts)}")
    del model
    chosen = args.only or list(SETTINGS)
    print()
    print(
        "| split | setting | seed | jobs promoted (all / part / none) | learnt | own cold "
        "| paraphrases | general kept (min) | drift (max) | s/fact |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting in chosen:
        for seed in args.seeds:
            settings = replace(SETTINGS[setting], seed=seed)
            if args.max_epochs:
                settings = replace(settings, max_epochs=args.max_epochs)
            results: list[JobResult] = []
            rows: list[tuple[str, bool, bool, int, str]] = []
            for at in range(0, len(conversations), args.per_job):
                result, job_rows = run_job(
                    conversations[at : at + args.per_job], settings, folder, device
                )
                results.append(result)
                rows += job_rows
                for fid, learnt, own, para, said in job_rows:
                    print(f"  {fid}: learnt {learnt}, own {own}, para {para}/3  {said[:60]!r}",
                          file=sys.stderr)  # fmt: skip
            n = sum(r.facts for r in results)
            whole = sum(r.promoted and r.learnt == r.facts for r in results)
            part = sum(r.promoted and r.learnt < r.facts for r in results)
            none = len(results) - whole - part
            kept = [r.kept / r.known for r in results if r.kept is not None and r.known]
            drift = [r.drift for r in results if r.drift is not None]
            seconds = sum(r.seconds for r in results)
            print(
                f"| {args.split} | {setting} | {seed} | {whole} / {part} / {none} "
                f"| {sum(r.learnt for r in results)}/{n} | {sum(r.own for r in results)}/{n} "
                f"| {sum(r.para for r in results)}/{3 * n} "
                f"| {min(kept):.1%} | {max(drift):.3f} | {seconds / n:.0f} |"
                if kept and drift
                else f"| {args.split} | {setting} | {seed} | {whole} / {part} / {none} "
                f"| {sum(r.learnt for r in results)}/{n} | {sum(r.own for r in results)}/{n} "
                f"| {sum(r.para for r in results)}/{3 * n} | - | - | {seconds / n:.0f} |",
                flush=True,
            )
            if args.json is not None:
                with args.json.open("a", encoding="utf-8") as out:
                    names = ("id", "learnt", "own", "para", "answer")
                    record = {
                        "split": args.split,
                        "setting": setting,
                        "seed": seed,
                        "jobs": [r.__dict__ for r in results],
                        "facts": [dict(zip(names, r, strict=True)) for r in rows],
                    }
                    out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
