"""What `score` and `stats` tell a user: every reply with its scores or why it is not a
candidate, and the stats under the documented snake_case names."""

from __future__ import annotations

import pytest
from ftreview.core.wire import to_timestamp
from ftreview.report import (
    assistant_replies,
    overall_stats_json,
    progress_line,
    reply_row_json,
    reply_rows,
    stats_json,
)
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2

T1, T2, T3, T4 = 1_700_000_000_000_000_001, 1_700_000_000_000_000_002, 0, 1_700_000_000_000_000_004


def _leaf(role: int, content: str, ns: int, memory: bool = False) -> conversation_pb2.Node:
    return conversation_pb2.Node(
        timestamp=to_timestamp(ns),
        memory=memory,
        leaf=conversation_pb2.Leaf(role=role, content=content),
    )


def _conversation() -> conversation_pb2.Conversation:
    memory = conversation_pb2.Node(
        memory=True,
        branch=conversation_pb2.Branch(
            label="recalled",
            children=[_leaf(conversation_pb2.ROLE_ASSISTANT, "old note", 99)],
        ),
    )
    return conversation_pb2.Conversation(
        id="c1",
        nodes=[
            memory,
            _leaf(conversation_pb2.ROLE_USER, "cat?", 5),
            _leaf(conversation_pb2.ROLE_ASSISTANT, "Biscuit.", T1),
            _leaf(conversation_pb2.ROLE_ASSISTANT, "Hello.", T2),
            _leaf(conversation_pb2.ROLE_ASSISTANT, "From an old log.", T3),
            _leaf(conversation_pb2.ROLE_ASSISTANT, "Trained before.", T4),
        ],
    )


def test_replies_are_the_non_memory_assistant_leaves_in_order() -> None:
    replies = assistant_replies(_conversation())
    assert [r.content for r in replies] == [
        "Biscuit.",
        "Hello.",
        "From an old log.",
        "Trained before.",
    ]
    assert replies[0].timestamp_ns == T1 and replies[0].node_path == "nodes[2]"


def _score(
    ns: int, divergence: float, reason: int = 0, *, path: str = "", content: str = "",
    scored: bool = True, candidate: bool = False,
) -> scorer_pb2.ReplyScore:  # fmt: skip
    return scorer_pb2.ReplyScore(
        timestamp=to_timestamp(ns), node_path=path, content=content, divergence=divergence,
        peak=divergence * 3, scored=scored, candidate=candidate, reason=reason,  # type: ignore[arg-type]
    )  # fmt: skip


def test_each_reply_shows_its_scores_and_is_a_candidate_or_says_why_not() -> None:
    candidate = review_pb2.Candidate(
        timestamp=to_timestamp(T1), divergence=1.8, peak=4.2,
        status=review_pb2.CANDIDATE_STATUS_APPROVED,
    )  # fmt: skip
    scores = [
        _score(T1, 1.8, candidate=True),
        _score(T2, -0.12, scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD),
        _score(
            T3,
            0.4,
            scorer_pb2.NOT_CANDIDATE_REASON_UNSET_TIMESTAMP,
            path="nodes[4]",
            content="From an old log.",
        ),
        _score(T4, 0.9, scorer_pb2.NOT_CANDIDATE_REASON_ALREADY_TRAINED),
    ]
    rows = reply_rows("c1", assistant_replies(_conversation()), scores, [candidate], False)
    shapes = [reply_row_json(r, "f.json") for r in rows]
    assert shapes[0] == {
        "file": "f.json", "conversation_id": "c1", "timestamp_ns": T1,
        "timestamp": "2023-11-14T22:13:20.000000001Z", "content": "Biscuit.",
        "divergence": 1.8, "peak": 1.8 * 3, "candidate": True, "status": "approved",
    }  # fmt: skip
    assert [(s["candidate"], s.get("reason"), s["divergence"]) for s in shapes[1:]] == [
        (False, "below_threshold", -0.12),
        (False, "unset_timestamp", 0.4),
        (False, "already_trained", 0.9),
    ]
    assert shapes[1]["peak"] == -0.12 * 3


def test_a_refused_reply_has_no_numbers_and_the_scorers_reason() -> None:
    replies = assistant_replies(_conversation())[1:2]
    (row,) = reply_rows(
        "c1", replies,
        [_score(T2, 0.0, scorer_pb2.NOT_CANDIDATE_REASON_TOO_LONG, scored=False)], [], False,
    )  # fmt: skip
    assert (row.divergence, row.peak, row.candidate, row.reason) == (None, None, False, "too_long")


def test_an_unset_timestamp_reply_is_matched_by_its_path_and_content() -> None:
    replies = assistant_replies(_conversation())[2:3]
    elsewhere = _score(T3, 0.4, 2, path="nodes[9]", content="From an old log.")
    edited = _score(T3, 0.4, 2, path="nodes[4]", content="Something else.")
    (row,) = reply_rows("c1", replies, [elsewhere, edited], [], False)
    assert row.divergence is None and row.reason == "not_scored"


def test_a_listed_candidate_stays_a_candidate_and_a_failed_run_says_so() -> None:
    replies = assistant_replies(_conversation())[:2]
    listed = review_pb2.Candidate(
        timestamp=to_timestamp(T1), divergence=1.8, peak=4.2,
        status=review_pb2.CANDIDATE_STATUS_PENDING,
    )  # fmt: skip
    # Rescored lower after the threshold went up: additive sync keeps it in the list.
    lower = _score(T1, 0.5, scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD)
    kept, missing = reply_rows("c1", replies, [lower], [listed], True)
    assert (kept.candidate, kept.status, kept.reason, kept.divergence) == (
        True, "pending", "", 0.5,
    )  # fmt: skip
    assert (missing.divergence, missing.reason) == (None, "scoring_failed")


def test_stats_json_has_every_field_of_finetune_scoring_stats_in_snake_case() -> None:
    stats = scorer_pb2.FinetuneScoringStats(
        conversation_id="c1", responses_seen=12, max_divergence=3e-8, threshold=1e-7,
        skipped_unset_timestamp=4, taken_at=to_timestamp(T1),
    )  # fmt: skip
    shape = stats_json(stats)
    assert set(scorer_pb2.FinetuneScoringStats.DESCRIPTOR.fields_by_name) <= set(shape)
    assert shape["responses_seen"] == 12 and shape["skipped_unset_timestamp"] == 4
    assert shape["taken_at_ns"] == T1


def test_overall_stats_put_the_last_run_on_top_with_counts_beside_it() -> None:
    reply = review_pb2.GetStatsResponse(
        last=scorer_pb2.FinetuneScoringStats(conversation_id="c2", responses_seen=3),
        conversations=[scorer_pb2.FinetuneScoringStats(conversation_id="c1")],
        pending=2, approved=1, threshold=1e-6,
    )  # fmt: skip
    shape = overall_stats_json(reply)
    assert shape["conversation_id"] == "c2" and shape["responses_seen"] == 3
    assert shape["pending"] == 2 and shape["approved"] == 1 and shape["training"] == 0
    assert shape["current_threshold"] == 1e-6
    assert [c["conversation_id"] for c in shape["conversations"]] == ["c1"]


def test_progress_line_draws_the_fraction_done() -> None:
    activity = activity_pb2.Activity(
        id="a", label="score c1", done=1, total=4, detail="with memories"
    )
    line = progress_line(activity, width=8)
    assert line == "score c1 [##......] 1/4 with memories"


def test_job_json_keeps_unmeasured_figures_null_and_gives_times_twice() -> None:
    from ftreview.report import job_json

    job = review_pb2.TrainingJob(
        id="j1", state=review_pb2.TRAINING_JOB_STATE_RUNNING, examples=3,
        trained_divergence_before=1.5, recall=0.0, created_at=to_timestamp(T1),
    )  # fmt: skip
    shown = job_json(job)
    assert shown["state"] == "running" and shown["examples"] == 3
    assert shown["trained_divergence_before"] == 1.5
    assert shown["recall"] == 0.0  # measured as zero: not null
    assert shown["trained_divergence_after"] is None and shown["generic_loglik_change"] is None
    assert shown["created_at_ns"] == T1 and shown["created_at"].endswith("Z")
    assert shown["ended_at_ns"] == 0 and shown["ended_at"] is None
    assert shown["learnt"] is None and shown["drift"] is None and shown["per_example"] == []


def test_job_json_and_figures_carry_the_trainers_proof_per_reply() -> None:
    from ftreview.report import job_json
    from ftreview.report.tables import job_figures

    job = review_pb2.TrainingJob(
        id="ft-2", examples=2, learnt=1, drift=0.05, general_retention=0.97,
        per_example=[
            review_pb2.ExampleProof(idempotency_key="a", learnt=True, fact="biscuit",
                                    divergence_after=0.02, answer_after="Biscuit."),
            review_pb2.ExampleProof(idempotency_key="b", learnt=False, reason="not learnt"),
            review_pb2.ExampleProof(idempotency_key="c"),
        ],
    )  # fmt: skip
    shown = job_json(job)
    assert (shown["learnt"], shown["drift"], shown["general_retention"]) == (1, 0.05, 0.97)
    first, second, third = shown["per_example"]
    assert (first["learnt"], first["fact"], first["answer_after"]) == (True, "biscuit", "Biscuit.")
    assert first["divergence_before"] is None and first["divergence_after"] == 0.02
    assert (second["learnt"], second["reason"]) == (False, "not learnt")
    assert third["learnt"] is None  # the trainer did not say
    line = job_figures(job)
    assert "learnt 1 of 2" in line and "general answers kept 97%" in line and "drift 0.05" in line


def test_trained_json_before_after_and_candidate_memories_largest_first() -> None:
    from ftreview.report import candidate_json, trained_json

    entry = review_pb2.TrainedEntry(timestamp=to_timestamp(T1), divergence_before=2.0)
    shown = trained_json(entry)
    assert (shown["divergence_before"], shown["divergence_after"], shown["adapter"]) == (
        2.0, None, "",
    )  # fmt: skip
    candidate = review_pb2.Candidate(
        timestamp=to_timestamp(T2),
        question="cat?",
        memories=[
            scorer_pb2.MemoryAttribution(node_path="nodes[1]", content="a", attribution=0.1),
            scorer_pb2.MemoryAttribution(node_path="nodes[2]", content="b", attribution=1.2),
        ],
    )
    shown = candidate_json(candidate)
    assert shown["question"] == "cat?" and shown["send_error"] == "" and shown["job_id"] == ""
    assert [m["node_path"] for m in shown["memories"]] == ["nodes[2]", "nodes[1]"]


def test_stats_totals_add_up_every_conversation() -> None:
    from ftreview.report import stats_totals_json

    runs = [
        scorer_pb2.FinetuneScoringStats(
            conversation_id="a", responses_seen=3, responses_scored=3,
            responses_above_threshold=2, max_divergence=1.5, skipped_too_long=1,
        ),
        scorer_pb2.FinetuneScoringStats(
            conversation_id="b", responses_seen=2, responses_scored=1, max_divergence=-0.1,
            skipped_unset_timestamp=1, error="boom",
        ),
    ]  # fmt: skip
    totals = stats_totals_json(runs)
    assert totals == {
        "conversations": 2, "responses_seen": 5, "responses_scored": 4,
        "responses_above_threshold": 2, "max_divergence": 1.5, "skipped": 2, "errors": 1,
    }  # fmt: skip
    assert stats_totals_json([])["max_divergence"] is None


def test_a_reply_in_training_names_its_job_and_a_returned_one_says_why() -> None:
    from ftreview.report import candidate_json, candidate_status, send_notes, stats_text

    training = review_pb2.Candidate(
        timestamp=to_timestamp(T1), status=review_pb2.CANDIDATE_STATUS_SENT, job_id="ft-3"
    )
    why = "job ft-3 did not learn it: not learnt: divergence 0.71"
    returned = review_pb2.Candidate(
        timestamp=to_timestamp(T2), status=review_pb2.CANDIDATE_STATUS_APPROVED, send_error=why
    )
    pending = review_pb2.Candidate(timestamp=to_timestamp(T4))
    assert candidate_status(training) == "training · ft-3"
    assert (candidate_json(training)["status"], candidate_json(training)["job_id"]) == (
        "sent", "ft-3",
    )  # fmt: skip
    assert candidate_status(returned) == "approved"
    assert send_notes([training, returned, pending]) == [
        "not trained by the last send (the next send tries again):",
        f"  {T2}  {why}",
    ]
    assert send_notes([training, pending]) == []
    stats = review_pb2.GetStatsResponse(pending=1, approved=1, training=1, trained=4)
    assert stats_text(stats).splitlines()[0] == (
        "candidates: 1 pending, 1 approved, 0 rejected, 1 in training; 4 trained"
    )


@pytest.mark.parametrize("width", [80, 60])
def test_a_narrow_terminal_cuts_the_text_never_an_id(width: int) -> None:
    from ftreview.report.tables import fit, table
    from rich.console import Console

    ids = ["1772355611000000007", "1975081415181000002"]
    rows = [
        [ids[0], "pending", "2.235", "Send it to your supervisor, Dr. Okafor, before " * 3],
        [
            ids[1],
            "approved",
            "1.782",
            "请把最终稿发给你的导师奥卡福博士，并告诉他答辩的日期和地点。",
        ],
    ]
    console = Console(width=width, soft_wrap=False)
    with console.capture() as captured:
        console.print(fit(table(["id", "status", "divergence", "reply"], rows), width))
    lines = captured.get().splitlines()
    assert lines[0].split() == ["id", "status", "divergence", "reply"]
    for line, shown_id in zip(lines[1:], ids, strict=True):
        assert line.startswith(shown_id + " ")  # whole, pasteable
        assert line.rstrip().endswith("…") and len(line) <= width
    assert "approved" in lines[2]


def test_grounding_in_the_json_shape_and_a_flagged_row_in_the_table() -> None:
    from ftreview.report import candidate_json, candidate_table, grounding_notes
    from rich.console import Console

    wrong = review_pb2.Candidate(
        timestamp=to_timestamp(T1),
        content="It's on 12 March.",
        status=review_pb2.CANDIDATE_STATUS_PENDING,
        grounding=review_pb2.GROUNDING_CONTRADICTS_MEMORY,
        grounding_spans=[
            review_pb2.GroundingSpan(
                start=8,
                end=16,
                kind=review_pb2.GROUNDING_CONTRADICTS_MEMORY,
                node_path="nodes[1]",
                value="18 March",
            )
        ],
    )
    fine = review_pb2.Candidate(
        timestamp=to_timestamp(T2), content="Biscuit.", grounding=review_pb2.GROUNDING_SUPPORTED
    )
    older = review_pb2.Candidate(timestamp=to_timestamp(T4), content="said nothing")
    shown = candidate_json(wrong)
    assert shown["grounding"] == "contradicts_memory"
    assert shown["grounding_spans"] == [
        {
            "start": 8,
            "end": 16,
            "text": "12 March",
            "kind": "contradicts_memory",
            "node_path": "nodes[1]",
            "value": "18 March",
        }
    ]
    assert (candidate_json(fine)["grounding"], candidate_json(fine)["grounding_spans"]) == (
        "supported", [],
    )  # fmt: skip
    assert candidate_json(older)["grounding"] is None  # a Review that did not say
    console = Console(width=80, record=True)
    console.print(candidate_table([wrong, fine, older], 80))
    lines = console.export_text().splitlines()
    assert lines[1].startswith(f"{T1}  pending ≠")
    assert lines[2].startswith(f"{T2}  unknown ")
    assert "≠" not in lines[2]
    assert grounding_notes([fine, older]) == []
    (note,) = grounding_notes([wrong, fine])
    assert note.startswith("≠ contradicts its memory")
