"""`ftreview-scorer` / `python -m scorer_service`: run the Scorer service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from ftreview.core.defaults import SCORER_ADDRESS, SCORER_GRACE_SECONDS
from ftreview.core.security import add_server_security_flags, resolve_token

from scorer_service.backends import precision
from scorer_service.backends.kv_cache import DEFAULT_KV_CACHE_MB
from scorer_service.model_files import ModelNotFound
from scorer_service.server import ScorerConfig, serve


def parse_args(argv: list[str] | None = None) -> ScorerConfig:
    parser = argparse.ArgumentParser(
        prog="ftreview-scorer",
        description="Scores assistant replies by how much they lean on memories.",
    )
    parser.add_argument(
        "--listen",
        default=SCORER_ADDRESS,
        metavar="HOST:PORT",
        help="where to serve gRPC (default %(default)s; port 0 picks one)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "vllm", "vllm-score", "sglang"),
        default="local",
        help="the engine that computes log-probabilities (default %(default)s)",
    )
    parser.add_argument(
        "--backend-url",
        action="append",
        default=[],
        metavar="URL",
        dest="backend_urls",
        help="base URL of a vLLM or SGLang server; repeat to spread over replicas",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="model folder or .gguf (local), or its tokenizer (remote "
        "engines); default: the embedded SmolLM2-135M-Instruct",
    )
    parser.add_argument(
        "--served-model",
        default=None,
        metavar="NAME",
        help="model name on the remote engine (default: its first model)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument(
        "--dtype",
        choices=precision.CHOICES,
        default="auto",
        help="local engine arithmetic. mixed: the attention in bfloat16; its value/output "
        "projections and the MLP's three projections multiply bfloat16 into float32; float32 "
        "for the rest (query/key projections and the output layer included). auto "
        "(default): bfloat16 on a GPU; on a CPU mixed "
        "where it has bfloat16 instructions (AVX512-BF16, AMX), else float32. The "
        "log-softmax is float32 always",
    )
    parser.add_argument(
        "--kv-cache-mb",
        type=int,
        default=DEFAULT_KV_CACHE_MB,
        metavar="MB",
        help="local engine: memory for the attention caches of recent conversations, so "
        "the next turn costs only its new tokens (default %(default)s; 0 turns reuse off)",
    )
    parser.add_argument(
        "--adapter-dir",
        default=None,
        metavar="DIR",
        help="at start, serve the adapter named in DIR/current.json (the trainer's "
        "promotions), if there is one",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=SCORER_GRACE_SECONDS,
        metavar="SECONDS",
        help="on SIGTERM, how long calls in flight may finish (default %(default)g)",
    )
    add_server_security_flags(parser)
    args = parser.parse_args(argv)
    if args.kv_cache_mb < 0:
        parser.error("--kv-cache-mb must be >= 0")
    return ScorerConfig(
        listen=args.listen,
        backend=args.backend,
        backend_urls=args.backend_urls,
        model=args.model,
        served_model=args.served_model,
        device=args.device,
        dtype=args.dtype,
        kv_cache_mb=args.kv_cache_mb,
        adapter_dir=args.adapter_dir,
        grace_seconds=args.grace,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        token=resolve_token(args.token_file),
    )


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ValueError as exc:  # a TLS or token setting that cannot work
        print(f"ftreview-scorer: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "transformers", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(serve(config))
    except (ValueError, OSError, ModelNotFound) as exc:
        print(f"ftreview-scorer: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
