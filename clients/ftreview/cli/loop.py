"""The demo's closed loop, for a run without a terminal: what a person would do on the
review screen, done by rule, then the proof that the model learned.

It approves the candidates above `APPROVE_ABOVE` nats/token (saying that a person would
decide here), sends, follows the training job and the re-scoring on the Review's activity
stream, and prints per reply: the divergence before -> after (the Review's re-scoring),
the trainer's proof (the fact it looked for, whether it came back, its answer without
memories before and after, as the job reports them), and, asked now on the served model,
the reply's question cold (no memories, no conversation): knowing without being told.
Nothing here talks to a service but the Review.
"""

from __future__ import annotations

import argparse
import asyncio

from ftreview.cli.context import review_client, say
from ftreview.cli.shipping import send_and_follow
from ftreview.core.wire import timestamp_ns
from ftreview.report import job_figures, number, one_line
from ftreview.v1 import review_pb2

APPROVE_ABOVE = 1.0
# Training on this CPU takes minutes; the job, not the demo, decides when it is done.
TRAINING_TIMEOUT_S = 3600.0


def run_closed_loop(args: argparse.Namespace) -> bool:
    """True when a job trained and every trained reply was re-scored."""
    with review_client(args) as client:
        chosen = [c for c in client.list_candidates(["pending"]) if c.divergence > APPROVE_ABOVE]
        if not chosen:
            say(f"no candidate above {APPROVE_ABOVE:g} nats/token: nothing to train")
            return False
        say(
            f"a person would decide here; the demo approves the {len(chosen)} candidate(s) "
            f"above {APPROVE_ABOVE:g} nats/token"
        )
        client.approve([timestamp_ns(c.timestamp) for c in chosen])
    args.ids, args.no_wait, args.json = [], False, False
    args.timeout = max(getattr(args, "timeout", 0) or 0, TRAINING_TIMEOUT_S)
    say("sending them to the trainer; training runs on this machine's CPU (minutes)")
    outcome = asyncio.run(send_and_follow(args, []))
    with review_client(args) as client:
        after = {timestamp_ns(c.timestamp): client.ask(c.question) for c in chosen}
        trained = {timestamp_ns(e.timestamp): e for e in client.list_trained()}
    # Accepted but not learnt by their job: approved again, with the trainer's reason.
    returned = {timestamp_ns(c.timestamp): c.send_error for c in outcome.returned}
    proofs: dict[int, review_pb2.ExampleProof] = {}
    for job in outcome.jobs:
        if job.id not in outcome.job_ids:
            continue
        proofs.update((timestamp_ns(p.timestamp), p) for p in job.per_example)
        if job.state == review_pb2.TRAINING_JOB_STATE_FAILED:
            say(f"training job {job.id} failed: {job.error}")
        else:
            say(f"training job {job.id}: {job_figures(job)}")
    print()
    measured = True
    for c in chosen:
        ns = timestamp_ns(c.timestamp)
        entry = trained.get(ns)
        has_after = entry is not None and entry.HasField("divergence_after")
        measured &= has_after
        change = (
            f"{number(entry.divergence_before)} → {number(entry.divergence_after)}"
            if entry is not None and has_after
            else f"{number(c.divergence)} → (not trained"
            + (f": {one_line(returned[ns], 90)})" if ns in returned else ")")
        )
        print(f"{one_line(c.content, 70)}")
        print(f"  asked: {one_line(c.question, 66)}")
        print(f"  divergence {change} nats/token")
        proof = proofs.get(ns)
        if proof is not None:  # the trainer's answers, in the reply's turn without memories
            print(f"  trainer: {_verdict(proof)}")
            print(f"    before: {one_line(proof.answer_before, 62)}")
            print(f"    after:  {one_line(proof.answer_after, 62)}")
        answer = after[ns]
        print(f"  asked cold: {one_line(answer.answer, 60)}  ({answer.adapter or 'base'})")
    return measured


def _verdict(proof: review_pb2.ExampleProof) -> str:
    """`fact "okafor" came back without memories`, or why it did not."""
    fact = f'fact "{proof.fact}"' if proof.fact else "the reply"
    if not proof.HasField("learnt"):
        return f"{fact}: the trainer does not say whether it was learnt"
    if proof.learnt:
        return f"{fact} came back without memories"
    return f"{fact} did not come back: {one_line(proof.reason, 60)}"
