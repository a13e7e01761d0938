"""How many facts does one adapter of the embedded model hold? Facts held against rank.

Issue 17 asks what happens when the facts outgrow what one LoRA holds. This bench measures
the adapter alone: N invented facts (one per invented person: "What is my cousin Orla's
home town?" -> "Your cousin Orla's home town is Vaskerby.", the town's name made of random
syllables, so the base model cannot know or guess it) trained as the trainer's own rows
(its cold rows: the question in a new conversation, answered by the reply), with the
trainer's adapter (all linear layers, alpha twice the rank, `training._wrap`) and its TRL
configuration (`training.sft_config`: learning rate, batch, float32), for up to `--epochs`
epochs. Every `--every` epochs each question is asked cold (greedy); a fact is held when
the answer names its town (`general.Question.right`).

Only the adapter's room is measured: no guard, no anchor, no variants. A job of the
trainer trains each fact with several rows and holds the base model's answers with the
anchor, so it learns a fact more slowly: this bench says how many facts the adapter has
room for, not how fast a job fills it. The facts are synthetic and one per person; the fact
set's facts are measured by bench_learning.py.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_capacity.py [--facts 25 50 100]
        [--ranks 4 16] [--epochs 20] [--every 4] [--seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainer_service.examples import Example  # noqa: E402
from trainer_service.general import SYSTEM, Question  # noqa: E402
from trainer_service.lengths import training_row  # noqa: E402
from trainer_service.measures import greedy_answers  # noqa: E402
from trainer_service.model import base_model_folder, default_device, load_base  # noqa: E402
from trainer_service.settings import DEFAULTS  # noqa: E402
from trainer_service.training import _wrap, sft_config  # noqa: E402

RELATIONS = (
    "cousin", "neighbour", "colleague", "aunt", "uncle", "niece", "nephew", "friend",
    "teacher", "landlord", "godmother", "classmate",
)  # fmt: skip
FIRST = ("Al", "Be", "Ca", "Do", "El", "Fa", "Gi", "Ha", "Ir", "Jo", "Ka", "Lu", "Mi", "No")
SECOND = ("ric", "nna", "lto", "mer", "sia", "ven", "dra", "lix", "bel", "rin", "tho", "vie")
TOWN_PARTS = (
    "vas", "ker", "bel", "dor", "mun", "tal", "ros", "fen", "lim", "quar", "sel", "brun",
    "hav", "nol", "pir", "zem", "gar", "oth", "wel", "yst",
)  # fmt: skip
TOWN_ENDS = ("by", "holm", "stead", "wick", "mouth", "ford", "ton", "vale")
ANSWER_TOKENS = 16


@dataclass(frozen=True)
class Fact:
    question: Question
    example: Example


def invented_facts(count: int, seed: int) -> list[Fact]:
    """`count` facts, one per (relation, name), each with its own town; the same for a seed."""
    rng = random.Random(seed)
    people = [(r, f + s) for r in RELATIONS for f in FIRST for s in SECOND]
    if count > len(people):
        raise SystemExit(f"--facts: at most {len(people)} invented people")
    rng.shuffle(people)
    towns: set[str] = set()
    facts = []
    for relation, name in people[:count]:
        while True:
            town = "".join(rng.sample(TOWN_PARTS, 2)) + rng.choice(TOWN_ENDS)
            if town not in towns:
                towns.add(town)
                break
        town = town.capitalize()
        question = f"What is my {relation} {name}'s home town?"
        reply = f"Your {relation} {name}'s home town is {town}."
        context = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        facts.append(
            Fact(Question(question, (town,)), Example(f"{relation}-{name}", context, reply))
        )
    return facts


def held(model: Any, tokenizer: Any, facts: list[Fact], batch: int = 32) -> int:
    count = 0
    for at in range(0, len(facts), batch):
        part = facts[at : at + batch]
        answers = greedy_answers(model, tokenizer, [f.example.context for f in part], ANSWER_TOKENS)
        count += sum(f.question.right(a) for f, a in zip(part, answers, strict=True))
    return count


def run_cell(
    folder: Path, device: str, facts: list[Fact], rank: int, epochs: int, every: int, seed: int
) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer

    model, tokenizer = load_base(folder, device)
    settings = replace(DEFAULTS, rank=rank, alpha=2 * rank, seed=seed, max_epochs=epochs)
    model = _wrap(model, settings)
    curve: list[tuple[int, int]] = []

    class Ask(TrainerCallback):  # type: ignore[misc]
        def on_epoch_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            epoch = round(state.epoch)
            if epoch % every == 0 or epoch == epochs:
                curve.append((epoch, held(model, tokenizer, facts)))
                print(f"  rank {rank}, {len(facts)} facts, epoch {epoch}: {curve[-1][1]} held",
                      file=sys.stderr, flush=True)  # fmt: skip
                if curve[-1][1] == len(facts):
                    control.should_training_stop = True

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
        config = sft_config(settings, scratch, device, settings.learning_rate)
        rows = [training_row(f.example, tokenizer) for f in facts]
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[Ask()],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    best_epoch, best = max(curve, key=lambda point: (point[1], -point[0]))
    return {
        "facts": len(facts),
        "rank": rank,
        "held": best,
        "epoch": best_epoch,
        "curve": curve,
        "adapter_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    folder, _ = base_model_folder(None)
    device = default_device()
    model, tokenizer = load_base(folder, device)
    largest = invented_facts(max(args.facts), args.seed)
    base = held(model, tokenizer, largest)
    del model
    print(f"base model, no training: {base} of {len(largest)} held", file=sys.stderr)

    results = []
    for count in args.facts:
        for rank in args.ranks:
            facts = invented_facts(count, args.seed)
            results.append(
                run_cell(folder, device, facts, rank, args.epochs, args.every, args.seed)
            )

    print(f"\nfacts held against rank (invented facts, seed {args.seed}, up to {args.epochs} "
          f"epochs, asked every {args.every}; base model {base}/{len(largest)})")  # fmt: skip
    print("| facts | rank | adapter parameters | held (best) | at epoch | s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['facts']} | {r['rank']} | {r['adapter_parameters']:,} | {r['held']}/"
              f"{r['facts']} | {r['epoch']} | {r['seconds']} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"base": base, "results": results}, indent=2))


if __name__ == "__main__":
    main()
