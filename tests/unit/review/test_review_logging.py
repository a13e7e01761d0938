"""`ftreview serve` shows the services' own events: the Review does not log each HTTP poll
of a followed job (httpx logs every request at INFO), unless asked for DEBUG."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from review_service.__main__ import parse_args


@pytest.mark.parametrize(("level", "polls_shown"), [("INFO", False), ("DEBUG", True)])
def test_job_polls_are_not_logged_at_info(tmp_path: Path, level: str, polls_shown: bool) -> None:
    httpx_log = logging.getLogger("httpx")
    before = httpx_log.level
    try:
        httpx_log.setLevel(logging.NOTSET)
        parse_args(["--home", str(tmp_path), "--log-level", level])
        assert (httpx_log.level == logging.WARNING) is not polls_shown  # DEBUG: left to the root
    finally:
        httpx_log.setLevel(before)
