"""Requests built from the shared conversation fixtures, and a job poller with a deadline."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "conversations"
EXAMPLE = REPO / "examples" / "thesis-defense.json"


def _flatten(nodes: list[dict[str, Any]], memory: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        if "children" in node:
            out += _flatten(node["children"], memory or bool(node.get("memory")))
        else:
            out.append({**node, "memory": memory or bool(node.get("memory"))})
    return out


def example_for(path: Path, reply: str, key: str, divergence: float = 2.0) -> dict[str, Any]:
    """The contract's example for `reply` in the fixture at `path`, memories sent along."""
    nodes = _flatten(json.loads(path.read_text())["nodes"])
    at = next(i for i, n in enumerate(nodes) if n["role"] == "assistant" and n["content"] == reply)
    plain = [{"role": n["role"], "content": n["content"]} for n in nodes[:at] if not n["memory"]]
    full = [{"role": n["role"], "content": n["content"]} for n in nodes[:at]]
    return {
        "idempotency_key": key,
        "conversation_id": path.stem,
        "divergence": divergence,
        "messages": [*plain, {"role": "assistant", "content": reply, "weight": 1}],
        "messages_with_memories": full,
    }


BISCUIT = (FIXTURES / "biscuit.json", "Your cat is named Biscuit.", "biscuit")
OKAFOR = (EXAMPLE, "Send it to your supervisor, Dr. Okafor.", "okafor")


async def wait_for_job(
    session: aiohttp.ClientSession, base: str, job_id: str, states: set[str], deadline_s: float
) -> dict[str, Any]:
    """The job once its state is in `states`; fails with its last figures at the deadline."""
    deadline = time.monotonic() + deadline_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        async with session.get(f"{base}/jobs/{job_id}") as response:
            assert response.status == 200
            job = await response.json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.5)
    raise AssertionError(f"job {job_id} not {states} within {deadline_s}s: {job}")
