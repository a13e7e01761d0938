"""`ftreview-trainer` / `python -m trainer_service`: run the fine-tuning endpoint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from ftreview.auth import SecurityConfigError, resolve_channel_credentials, resolve_token
from ftreview.core.defaults import DEFAULT_HOME, HOME_ENV, TRAINER_ADDRESS, default_home
from ftreview.core.parent import die_with_parent

from .adapters import KEEP_DEFAULT
from .config import TrainerConfigError, guard_limits
from .guard import GuardSettings
from .model import ModelNotFound, base_model_folder, default_device
from .scorer_link import ScorerLink
from .server import PATH, TrainerConfig, start
from .settings import DEFAULTS, TrainingSettings


def _parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    parser = argparse.ArgumentParser(
        prog="ftreview-trainer",
        description="The fine-tuning endpoint: trains approved replies into a LoRA adapter "
        f"under a forgetting guard (POST {PATH}).",
    )
    parser.add_argument(
        "--listen",
        default=TRAINER_ADDRESS,
        metavar="HOST:PORT",
        help="where to serve HTTP (default %(default)s; port 0 picks one)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"job ledger and adapters (default ${HOME_ENV} or {DEFAULT_HOME})",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="base model folder or .gguf; default: the embedded SmolLM2-135M-Instruct "
        "(the Scorer's own cached copy)",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda ... (default: cuda when torch sees one)"
    )
    parser.add_argument(
        "--scorer",
        default=None,
        metavar="ADDR",
        help="the Scorer's gRPC address; told LoadAdapter after each promotion",
    )
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="require this bearer token on every request (default $FTREVIEW_TOKEN; none: open)",
    )
    parser.add_argument(
        "--scorer-token-file",
        default=None,
        metavar="FILE",
        help="bearer token for the Scorer (default $FTREVIEW_TOKEN)",
    )
    parser.add_argument(
        "--scorer-ca",
        default=None,
        metavar="FILE",
        help="CA file to reach the Scorer over TLS (default $FTREVIEW_TLS_CA)",
    )
    parser.add_argument(
        "--method",
        choices=("lora", "full"),
        default=d.method,
        help="LoRA adapter (default) or full fine-tuning (local use only: the "
        "Scorer loads LoRA adapters)",
    )
    parser.add_argument("--rank", type=int, default=d.rank, help="LoRA rank (default %(default)s)")
    parser.add_argument(
        "--alpha", type=int, default=d.alpha, help="LoRA alpha (default %(default)s)"
    )
    parser.add_argument(
        "--target-modules",
        default=",".join(d.target_modules),
        help="LoRA target modules, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=d.learning_rate, help="(default %(default)g)"
    )
    parser.add_argument(
        "--scheduler",
        default=d.scheduler,
        help="learning-rate schedule: constant, linear, cosine ... (default %(default)s)",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=d.max_epochs,
        help="the guard stops at the first epoch that meets its targets (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="(default %(default)s)"
    )
    parser.add_argument(
        "--self-study",
        type=int,
        default=d.self_study,
        metavar="N",
        help="add N paraphrased questions per reply, written by the model with "
        "its memories (default %(default)s)",
    )
    parser.add_argument(
        "--cold-variants",
        action=argparse.BooleanOptionalAction,
        default=d.cold_variants,
        help="also train each reply asked in a new conversation: its system messages and "
        "last question only (default: on)",
    )
    parser.add_argument(
        "--memory-statements",
        action=argparse.BooleanOptionalAction,
        default=d.memory_statements,
        help="also train the memory each reply leaned on, stated to the user and asked "
        "about by its subject (default: on)",
    )
    parser.add_argument(
        "--neighbours",
        action=argparse.BooleanOptionalAction,
        default=d.neighbours,
        help="also anchor each reply's question asked about the world instead of the user "
        '("does a dog" for "does my dog") to the base model\'s answer (default: on)',
    )
    parser.add_argument(
        "--rehearsal",
        type=float,
        default=d.rehearsal,
        metavar="RATIO",
        help="rehearsal rows (the base model's own answers to plain requests) per row of "
        "the job's own (default %(default)s; 0: none)",
    )
    parser.add_argument(
        "--teacher-answers",
        type=int,
        default=d.teacher_answers,
        metavar="N",
        help="per reply, up to N answers of the base model with the memories in its prompt, "
        "trained without them (default %(default)s)",
    )
    parser.add_argument(
        "--keep-adapters",
        type=int,
        default=KEEP_DEFAULT,
        metavar="N",
        help="adapter versions kept after each promotion, the current one always "
        "(default %(default)s; 0 keeps all)",
    )
    parser.add_argument(
        "--target-divergence",
        type=float,
        default=None,
        help="guard: divergence to reach "
        f"(default learn.target_divergence or {d.guard.target_divergence:g})",
    )
    parser.add_argument(
        "--max-drift",
        type=float,
        default=None,
        help="guard: largest mean KL(base || tuned) per token on the general questions, nats "
        f"(default learn.max_drift or {d.guard.max_drift:g})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is several times faster "
        "on a small machine shared with other work)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from(argv: list[str] | None = None) -> TrainerConfig:
    args = _parser().parse_args(argv)
    home = (args.home or default_home()).expanduser().resolve()
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise TrainerConfigError(f"--listen {args.listen!r}: expected HOST:PORT")
    if args.rehearsal < 0 or args.teacher_answers < 0:
        raise TrainerConfigError("--rehearsal and --teacher-answers: expected 0 or more")
    if args.keep_adapters < 0:
        raise TrainerConfigError(f"--keep-adapters {args.keep_adapters}: expected 0 or more")
    limits = guard_limits(home)
    guard = GuardSettings(
        target_divergence=args.target_divergence
        if args.target_divergence is not None
        else limits.get("target_divergence", DEFAULTS.guard.target_divergence),
        max_drift=args.max_drift
        if args.max_drift is not None
        else limits.get("max_drift", DEFAULTS.guard.max_drift),
        min_retention=limits.get("min_retention", DEFAULTS.guard.min_retention),
    )
    settings: TrainingSettings = replace(
        DEFAULTS,
        method=args.method,
        rank=args.rank,
        alpha=args.alpha,
        target_modules=tuple(m.strip() for m in args.target_modules.split(",") if m.strip()),
        learning_rate=args.learning_rate,
        scheduler=args.scheduler,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        self_study=args.self_study,
        cold_variants=args.cold_variants,
        memory_statements=args.memory_statements,
        rehearsal=args.rehearsal,
        neighbours=args.neighbours,
        teacher_answers=args.teacher_answers,
        guard=guard,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    folder, name = base_model_folder(args.model)
    notify = None
    if args.scorer:
        notify = ScorerLink(
            args.scorer,
            token=resolve_token(args.scorer_token_file),
            credentials=resolve_channel_credentials(args.scorer_ca),
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    return TrainerConfig(
        home=home,
        base_folder=folder,
        base_name=name,
        device=args.device or default_device(),
        host=host,
        port=int(port),
        settings=settings,
        notify_scorer=notify,
        keep_adapters=args.keep_adapters,
        token=resolve_token(args.token_file),
    )


async def serve(config: TrainerConfig) -> None:
    die_with_parent()  # started by `ftreview serve`: stop with it
    running = await start(config)
    # The same "serving on HOST:PORT" line as the other services (`ftreview serve` reads it).
    print(
        f"trainer serving on {config.host}:{running.port}; fine-tuning endpoint "
        f"http://{config.host}:{running.port}{PATH}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.runner.cleanup()
    # A job in training is not waited for: it is queued again on the next start.
    running.ledger.close()


def main(argv: list[str] | None = None) -> None:
    try:
        config = config_from(argv)
    except (TrainerConfigError, ModelNotFound, SecurityConfigError) as error:
        print(f"ftreview-trainer: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(serve(config))
    except OSError as error:  # the port is taken, the home is not writable, ...
        print(f"ftreview-trainer: cannot serve on {config.host}:{config.port}: {error}",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
