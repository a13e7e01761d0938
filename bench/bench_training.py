"""The closed loop on the fixtures: train the memory-dependent replies, then measure.

Per trained reply: divergence before -> after (on the promoted model), and whether the
model, asked without memories, reproduces it; per fact two hand-written paraphrased
questions (does the greedy answer contain the fact?); held-out memory replies that were not
trained (before -> after); the generic log-likelihood change; wall time. Every setting is
measured in the same run, the baseline (LoRA r=16 on q/v, lr 1e-3, 5 epochs, no guard: the
setting measured by hand in issue 11) first. A setting's result moves with its seed (the
order of the rows, the LoRA initialisation); `--seeds 0 1 2` runs each setting with each.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_training.py [--only NAME ...] [--set N=JSON]
        [--seeds N ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainer_service.examples import BUILT_IN_GENERIC, Example, HeldOut, JobInput  # noqa: E402
from trainer_service.measures import greedy_answers, normalise, reply_logprob  # noqa: E402
from trainer_service.model import base_model_folder, default_device, load_base  # noqa: E402
from trainer_service.settings import DEFAULTS, TrainingSettings  # noqa: E402
from trainer_service.training import train_job  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "conversations"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


@dataclass(frozen=True)
class Fact:
    reply: str  # the trained reply, as in the fixture
    word: str  # what an answer must contain to count as knowing the fact
    paraphrases: tuple[str, str]


FACTS = (
    Fact(
        "Your cat is named Biscuit.",
        "biscuit",
        ("What is the name of my cat?", "Do you remember what my cat is called?"),
    ),
    Fact(
        "The nightly ktest run happens on fennec at 02:00 UTC.",
        "fennec",
        ("On which server do the nightly tests run?", "What's the name of the build server?"),
    ),
    Fact(
        "Your defense is on 14 May at 10:00 in room B12.",
        "b12",
        ("Which room is my thesis defense in?", "Where will my defense take place?"),
    ),
    Fact(
        "Send it to your supervisor, Dr. Okafor.",
        "okafor",
        ("Who is my supervisor?", "Whom should I give my thesis draft to?"),
    ),
)
# Memory-dependent replies that are not trained: do they move?
HELD_OUT_MEMORY = (
    "Ines is a luthier: she builds and repairs string instruments.",
    "A marathon is 42.195 kilometres.",
)


def _flatten(nodes: list[dict[str, Any]], memory: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        if "children" in node:
            out += _flatten(node["children"], memory or bool(node.get("memory")))
        else:
            out.append({**node, "memory": memory or bool(node.get("memory"))})
    return out


def fixture_replies() -> dict[str, Example]:
    """Every assistant reply in the fixtures (plus the example), keyed by its text."""
    found: dict[str, Example] = {}
    paths = [*sorted(FIXTURES.glob("*.json")), REPO / "examples" / "thesis-defense.json"]
    for path in paths:
        data = json.loads(path.read_text())
        nodes = _flatten(data["nodes"] if isinstance(data, dict) else data)
        for i, node in enumerate(nodes):
            if node["role"] != "assistant" or node["memory"]:
                continue
            before = nodes[:i]
            plain = [
                {"role": m["role"], "content": m["content"]} for m in before if not m["memory"]
            ]
            full = [{"role": m["role"], "content": m["content"]} for m in before]
            found[node["content"]] = Example(
                key=f"{path.stem}-{i}",
                context=plain,
                reply=node["content"],
                context_with_memories=full if len(full) != len(plain) else None,
                divergence=None if len(full) != len(plain) else 0.0,
                conversation_id=path.stem,
            )
    return found


def divergence(model: Any, tokenizer: Any, example: Example) -> float:
    assert example.context_with_memories is not None
    return reply_logprob(
        model, tokenizer, example.context_with_memories, example.reply
    ) - reply_logprob(model, tokenizer, example.context, example.reply)


def ask(model: Any, tokenizer: Any, questions: list[str]) -> list[str]:
    chats = [[SYSTEM, {"role": "user", "content": q}] for q in questions]
    return greedy_answers(model, tokenizer, chats, 40)


def measure(model: Any, tokenizer: Any, replies: dict[str, Example]) -> dict[str, Any]:
    trained = [replies[f.reply] for f in FACTS]
    held = [replies[r] for r in HELD_OUT_MEMORY]
    generic = [h for h in BUILT_IN_GENERIC] + [
        HeldOut(e.context, e.reply) for e in replies.values() if e.context_with_memories is None
    ]
    own = greedy_answers(model, tokenizer, [e.context for e in trained], 40)
    para = ask(model, tokenizer, [q for f in FACTS for q in f.paraphrases])
    words = [f.word for f in FACTS for _ in f.paraphrases]
    return {
        "trained": [divergence(model, tokenizer, e) for e in trained],
        "held": [divergence(model, tokenizer, e) for e in held],
        "generic": [reply_logprob(model, tokenizer, h.context, h.reply) for h in generic],
        "recall": sum(
            normalise(e.reply) in normalise(a) for e, a in zip(trained, own, strict=True)
        ),
        "own_answers": own,
        "paraphrased": sum(w in normalise(a) for w, a in zip(words, para, strict=True)),
        "paraphrase_answers": para,
    }


def load_trained(folder: Path, staging: Path, settings: TrainingSettings) -> tuple[Any, Any]:
    model, tokenizer = load_base(folder, default_device())
    if settings.method == "full":
        return load_base(staging, default_device())
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(staging)), tokenizer


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


SETTINGS: dict[str, TrainingSettings] = {
    "baseline: LoRA r16 q,v, lr 1e-3 linear, 5 epochs, no guard": TrainingSettings(
        rank=16,
        alpha=32,
        target_modules=("q_proj", "v_proj"),
        learning_rate=1e-3,
        scheduler="linear",
        max_epochs=5,
        batch_size=1,
        guarded=False,
    ),
    "defaults: cold variants and memory statements, lr 1e-3, batch 4": DEFAULTS,
    "no memory statements (the defaults before)": replace(DEFAULTS, memory_statements=False),
    "neither (older defaults), lr 5e-4": replace(
        DEFAULTS, cold_variants=False, memory_statements=False, learning_rate=5e-4
    ),
    "defaults + self-study 2": replace(DEFAULTS, self_study=2),
    "defaults + self-study 4": replace(DEFAULTS, self_study=4),
    "full fine-tuning lr 5e-5": replace(DEFAULTS, method="full", learning_rate=5e-5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of settings to run (substring match)")
    parser.add_argument(
        "--set", nargs="*", default=[], help="extra setting: name=json overrides of the defaults"
    )
    parser.add_argument(
        "--seeds", nargs="*", type=int, default=[0], help="run every setting with each seed"
    )
    args = parser.parse_args()
    settings = dict(SETTINGS)
    for spec in args.set:
        name, _, overrides = spec.partition("=")
        data = json.loads(overrides)
        if "target_modules" in data:
            data["target_modules"] = tuple(data["target_modules"])
        settings[name] = replace(DEFAULTS, **data)
    if args.only:
        settings = {k: v for k, v in settings.items() if any(o in k for o in args.only)}
    if args.seeds != [0]:
        settings = {
            f"{name} (seed {seed})": replace(setting, seed=seed)
            for name, setting in settings.items()
            for seed in args.seeds
        }
    folder, _ = base_model_folder(None)
    replies = fixture_replies()
    model, tokenizer = load_base(folder, default_device())
    base = measure(model, tokenizer, replies)
    del model
    print(
        f"base: trained divergence {[round(d, 2) for d in base['trained']]}, "
        f"recall {base['recall']}/4, paraphrases {base['paraphrased']}/8",
        flush=True,
    )
    job = JobInput(examples=[replies[f.reply] for f in FACTS], held_out=list(BUILT_IN_GENERIC))
    rows = []
    for name, setting in settings.items():
        with tempfile.TemporaryDirectory() as tmp:
            staging = Path(tmp) / "adapter"
            started = time.monotonic()
            outcome = train_job(job, setting, folder, default_device(), staging, lambda p: None)
            seconds = time.monotonic() - started
            epochs = " | ".join(f.line() for f in outcome.history)
            print(
                f"\n{name}: {'promoted' if outcome.promoted else outcome.error}\n  {epochs}",
                flush=True,
            )
            if not outcome.promoted:
                rows.append((name, None, seconds, len(outcome.history)))
                continue
            trained_model, trained_tok = load_trained(folder, staging, setting)
            after = measure(trained_model, trained_tok, replies)
            print(
                "  own:", after["own_answers"], "\n  para:", after["paraphrase_answers"], flush=True
            )
            rows.append((name, after, seconds, len(outcome.history)))
    print(
        "\n| setting | epochs | trained div before → after | held-out memory div before → after "
        "| generic Δ | recall | paraphrases | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, after, seconds, epochs in rows:
        if after is None:
            print(f"| {name} | {epochs} | refused by the guard | | | | | {seconds:.0f} |")
            continue
        generic = _mean([a - b for a, b in zip(after["generic"], base["generic"], strict=True)])
        print(
            f"| {name} | {epochs} | {_mean(base['trained']):.2f} → {_mean(after['trained']):.2f} "
            f"(max {max(after['trained']):.2f}) "
            f"| {_mean(base['held']):.2f} → {_mean(after['held']):.2f} "
            f"| {generic:+.3f} | {after['recall']}/4 | {after['paraphrased']}/8 | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
