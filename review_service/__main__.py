"""`ftreview-review` / `python -m review_service`: run the Review server.

A user sees one line on stderr when it cannot start (what failed, what to do), never a
traceback; once serving it logs `review serving on HOST:PORT` with the real port, which
scripts and tests parse when they pass port 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ftreview.core.defaults import DEFAULT_HOME, HOME_ENV, default_home
from ftreview.core.security import (
    FINETUNE_TOKEN_ENV,
    TOKEN_ENV,
    add_server_security_flags,
    read_token_file,
    resolve_token,
)

from review_service.api.server import (
    DEFAULT_LISTEN,
    DEFAULT_SCORER,
    ReviewConfig,
    serve,
)
from review_service.domain.errors import ReviewError


def parse_args(argv: list[str] | None) -> ReviewConfig:
    parser = argparse.ArgumentParser(
        prog="ftreview-review",
        description="Serve the ftreview Review service (candidates, trained ledger, config).",
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})"
    )
    parser.add_argument(
        "--scorer", default=DEFAULT_SCORER, help=f"Scorer address (default {DEFAULT_SCORER})"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"folder of config.json5 and review.sqlite3 (default ${HOME_ENV} or {DEFAULT_HOME})",
    )
    add_server_security_flags(parser)
    parser.add_argument(
        "--scorer-tls-ca",
        metavar="PATH",
        help="reach the Scorer over TLS, trusting this PEM CA or self-signed certificate",
    )
    parser.add_argument(
        "--scorer-token-file",
        metavar="PATH",
        help="bearer token for the Scorer (default: this server's own, --token-file or "
        f"${TOKEN_ENV})",
    )
    parser.add_argument(
        "--default-finetune-url",
        default="",
        metavar="URL",
        help="the fine-tuning endpoint Send uses while learn.finetune_url is not set"
        " (ftreview serve points it at the trainer it starts)",
    )
    parser.add_argument(
        "--finetune-token-file",
        metavar="PATH",
        help=f"bearer token for the fine-tuning endpoint (default ${FINETUNE_TOKEN_ENV}; "
        "without one, only the --default-finetune-url trainer gets this server's own token)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: a job followed to its end is two polls a second.
    # The Review says what matters about them itself (a job's progress, its end).
    if args.log_level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
    token = resolve_token(args.token_file)
    return ReviewConfig(
        listen=args.listen,
        scorer=args.scorer,
        home=(args.home or default_home()).expanduser(),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        token=token,
        scorer_tls_ca=args.scorer_tls_ca,
        scorer_token=read_token_file(args.scorer_token_file) if args.scorer_token_file else token,
        default_finetune_url=args.default_finetune_url,
        finetune_token=resolve_token(args.finetune_token_file, FINETUNE_TOKEN_ENV),
    )


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ValueError as error:  # a TLS or token setting that cannot work
        print(f"ftreview-review: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except ReviewError as error:
        print(f"ftreview-review: {error.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"ftreview-review: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
