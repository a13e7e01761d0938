"""`ftreview serve`, `demo` and `review`: run the services here, and open the review screen.

Invariants:
- `serve` and `demo` stop the services they started on every way out (Ctrl-C, SIGTERM, an
  error, a service that exits), and `demo` removes the temporary home it made;
- the review screen (Textual) is imported inside the commands that open it, so no other
  command loads, or needs, the UI library; without a terminal they print the candidates and
  the stats instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from ftreview.auth import TLS_CA_ENV
from ftreview.cli.context import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    UsageError,
    add_command,
    connection,
    review_client,
    say,
    show,
)
from ftreview.cli.loop import run_closed_loop
from ftreview.cli.scoring import add_scoring_flags, score_files
from ftreview.client import resolve_review_address
from ftreview.core.defaults import REVIEW_ADDRESS, SCORER_ADDRESS, TRAINER_ADDRESS
from ftreview.errors import FtreviewError
from ftreview.local_services import LocalServices, ServiceOptions
from ftreview.report import candidate_table, send_notes, stats_text


class _Stop(Exception):
    """SIGTERM arrived (Ctrl-C arrives as KeyboardInterrupt)."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def _service_options(args: argparse.Namespace, echo: bool) -> ServiceOptions:
    def echo_line(name: str, line: str) -> None:
        print(f"[{name}] {line}", file=sys.stderr, flush=True)

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError(
            "--tls-cert and --tls-key go together: give both (TLS) or neither (plain text)"
        )
    return ServiceOptions(
        scorer_listen=args.scorer_listen,
        review_listen=args.review_listen,
        scorer_address=getattr(args, "scorer", None),
        trainer_listen=args.trainer_listen,
        trainer=not args.no_trainer,
        home=args.home,
        backend=args.backend,
        backend_urls=args.backend_url or (),
        model=args.model,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca or os.environ.get(TLS_CA_ENV) or None,
        token_file=args.token_file,
        startup_timeout_s=args.startup_timeout,
        echo=echo_line if echo else None,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    services = LocalServices(_service_options(args, echo=not args.quiet))
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        services.start()
        ca = services.trusted_ca
        tls = f" {TLS_CA_ENV}={os.path.abspath(ca)}" if args.tls_cert and ca else ""
        trainer = f"trainer serving on {services.finetune_url}\n" if services.finetune_url else ""
        print(
            f"scorer serving on {services.scorer_address}\n"
            f"{trainer}"
            f"review serving on {services.review_address}\n"
            f"export FTREVIEW_REVIEW_ADDR={services.review_address}{tls}",
            flush=True,
        )
        say("Ctrl-C stops them all")
        gone = services.wait()
        code = gone.process.returncode if gone.process else None
        raise FtreviewError(f"the {gone.name} exited (status {code}); stopping the others")
    except (_Stop, KeyboardInterrupt):
        say("stopping")
        return 0
    finally:
        services.stop()
        signal.signal(signal.SIGTERM, previous)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _show_review_plainly(args: argparse.Namespace) -> None:
    with review_client(args) as client:
        candidates = client.list_candidates()
        stats = client.get_stats()
    if candidates:
        show(candidate_table(candidates))
        for line in send_notes(candidates):
            print(line)
        print()
    else:
        print("no candidates")
    print(stats_text(stats))


def _open_review_screen(args: argparse.Namespace) -> int:
    from ftreview.tui.app import run_review  # the UI library loads only here

    c = connection(args)
    address = resolve_review_address(args.review)
    return run_review(address, args.home, credentials=c.credentials, token=c.token)


def cmd_review(args: argparse.Namespace) -> int:
    if not _interactive():
        _show_review_plainly(args)
        return 0
    with review_client(args) as client:
        client.get_config()  # fail here, in one line, if the service is not running
    return _open_review_screen(args)


def _bundled_examples() -> list[str]:
    examples = Path(__file__).resolve().parents[3] / "examples"
    return sorted(str(p) for p in examples.glob("*.json*"))


def cmd_demo(args: argparse.Namespace) -> int:
    files = args.files or _bundled_examples()
    if not files:
        raise UsageError("no example conversations found; give a file: ftreview demo FILE")
    if args.tls_cert:  # the demo's own clients trust the services' certificate
        args.tls_ca = args.tls_ca or os.environ.get(TLS_CA_ENV) or args.tls_cert
    temporary = None
    if not args.home:
        temporary = tempfile.mkdtemp(prefix="ftreview-demo-")
        args.home = temporary
    services = LocalServices(_service_options(args, echo=args.verbose))
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        say(f"starting the Scorer, the trainer and the Review service (home {args.home}) ...")
        services.start()
        args.review = services.review_address
        say(f"scorer on {services.scorer_address}, review on {args.review}; "
            f"scoring {', '.join(files)}")  # fmt: skip
        args.files, args.no_wait = files, False
        for run in score_files(args):
            if run.failed:
                say(f"scoring {run.file} {run.state}: {run.error}")
        if _interactive() and not args.no_review:
            return _open_review_screen(args)
        _show_review_plainly(args)
        if args.no_trainer or args.no_train:
            return 0
        return 0 if run_closed_loop(args) else EXIT_FAILED
    except (_Stop, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    finally:
        services.stop()
        signal.signal(signal.SIGTERM, previous)
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def _service_flags(p: argparse.ArgumentParser, listen: tuple[str, str, str | None]) -> None:
    p.add_argument("--scorer-listen", default=listen[0], metavar="HOST:PORT")
    p.add_argument("--review-listen", default=listen[1], metavar="HOST:PORT")
    p.add_argument(
        "--backend", choices=["local", "vllm", "vllm-score"], help="scoring engine (default local)"
    )
    p.add_argument("--backend-url", action="append", metavar="URL", help="engine URL (repeatable)")
    p.add_argument(
        "--model", metavar="PATH", help="model directory or GGUF file (default: embedded)"
    )
    p.add_argument(
        "--tls-cert", metavar="PATH", help="the services serve TLS with this PEM certificate"
    )
    p.add_argument("--tls-key", metavar="PATH", help="the PEM private key of --tls-cert")
    p.add_argument("--startup-timeout", type=float, default=300.0, metavar="S")
    p.add_argument(
        "--trainer-listen", default=listen[2], metavar="HOST:PORT",
        help="where the trainer (the fine-tuning endpoint) listens (default "
        f"{TRAINER_ADDRESS}, or a free port when the other two take free ports)",
    )  # fmt: skip
    p.add_argument(
        "--no-trainer", action="store_true",
        help="start no trainer (send goes to learn.finetune_url only)",
    )  # fmt: skip


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands,
        "serve",
        cmd_serve,
        "run the Scorer, the trainer and the Review service until Ctrl-C",
        json=False,
    )
    _service_flags(p, (SCORER_ADDRESS, REVIEW_ADDRESS, None))
    p.add_argument(
        "--scorer", metavar="ADDR",
        help="use the Scorer already running at ADDR instead of starting one",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="do not echo the services' logs")

    p = add_command(
        commands,
        "demo",
        cmd_demo,
        "start the services, score the bundled example, review it (without a terminal:"
        " approve, train and show what the model learned)",
        json=False,
    )
    _service_flags(p, ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"))
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="conversation files (default: examples/)"
    )
    p.add_argument(
        "--no-review",
        action="store_true",
        help="print candidates and stats instead of opening the screen",
    )
    p.add_argument(
        "--no-train", action="store_true",
        help="without a terminal, stop after printing the candidates (no approve, no training)",
    )  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="echo the services' logs")
    add_scoring_flags(p)

    add_command(commands, "review", cmd_review, "open the review screen", json=False)
