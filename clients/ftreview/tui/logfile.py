"""The review screen's log: the screen owns the terminal, so what it logs (tracebacks
included) goes to `HOME/logs/review-screen.log`; with no home, or a home that cannot be
written, nothing is logged and the screen runs anyway."""

from __future__ import annotations

import logging
from pathlib import Path


def configure_log(home: str | None) -> None:
    """The screen owns the terminal, so the log (with tracebacks) goes to a file in home."""
    if not home:
        return
    path = Path(home).expanduser() / "logs" / "review-screen.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ftreview.tui")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
