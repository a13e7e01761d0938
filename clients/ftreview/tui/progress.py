"""How far the queue is: the progress line above the list, and the end-of-queue summary
that replaces the list once no reply is pending.

Plain Python over the board's counts (`Board.counts`, `Board.session_decided`), so what it
says is what the board holds. The invariants: the progress line fits 80 columns (it drops
its words before its numbers), and the summary always ends with what to do next: send the
approved replies (the key and the CLI command), follow a training job, or score more.
"""

from __future__ import annotations

from rich.text import Text

from ftreview.tui.views import Status

NARROW_COLUMNS = 80


def progress_line(
    counts: dict[Status, int], session: int, sort: str, width: int = NARROW_COLUMNS
) -> Text:
    """ "3 decided this session · 5 of 8 pending left · sort: divergence (o)"."""
    total = sum(counts.values())
    pending = counts[Status.PENDING]
    text = Text()
    text.append(f"{session} decided this session", "bold")
    text.append(f" · {pending} of {total} pending left")
    text.append(f" · sort: {sort} (o)")
    if width > NARROW_COLUMNS + 20:
        text.append(" · d: decision history", "dim")
    if len(text.plain) > width:  # the short form keeps every number
        text = Text(f"{session} decided · {pending}/{total} pending · sort {sort}")
    return text


def queue_done_text(counts: dict[Status, int], session: int, jobs: tuple[str, ...] = ()) -> Text:
    """The end of the queue: what was decided, what is training, and what to do next."""
    approved = counts[Status.APPROVED]
    text = Text()
    text.append("Queue cleared: no reply is pending.\n\n", "bold")
    rows = [
        ("approved", approved, "ready to send" if approved else ""),
        ("rejected", counts[Status.REJECTED], ""),
        ("in training", counts[Status.SENT], f"job {', '.join(jobs)}" if jobs else ""),
        ("decided here", session, "this session"),
    ]
    for name, count, note in rows:
        text.append(f"  {name:<14}{count:>5}")
        text.append(f"   {note}\n" if note else "\n", "dim")
    text.append("\nNext: ", "bold")
    if approved:
        noun = "reply" if approved == 1 else "replies"
        text.append(f"press s to send the {approved} approved {noun} to fine-tuning\n")
        text.append("      (or run ", "")
        text.append("ftreview send", "bold")
        text.append(").\n")
    elif counts[Status.SENT]:
        text.append("the training job runs; its replies leave the list once learnt\n")
        text.append("      (follow it with ")
        text.append("ftreview jobs", "bold")
        text.append(").\n")
    else:
        text.append("nothing to send. Score more conversations with\n      ")
        text.append("ftreview score FILE", "bold")
        text.append(".\n")
    text.append(
        "\nu undoes the last decision · f status:approved,rejected lists the decided rows "
        "· d shows the decision history",
        "dim",
    )
    return text
