"""A user string cannot forge a log line: in the text log (the default) a request path
or a name with a newline, a carriage return, a line separator or a bidirectional
override is written escaped, on the one line of its record (the JSON log keeps it as
data inside a JSON string: tests/node/test_logs.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from node.run import logs

FORGED = "/v1/x\n2026-12-07 06:00:00,000 ERROR node.consensus.driver: validator halted"
HOSTILE = [FORGED, "a\rb", "a\u2028b", "a\u0085b", "pay \u202eRUE 01\u202c", "a\x1b[2Jb"]


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """A logger writing through the text log's formatter (the one ``logs.configure(logs.TEXT)``
    installs: tests/node/test_logs.py)."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.TextFormatter())
    logger = logging.getLogger("node.api.server")
    logger.addHandler(handler)
    try:
        yield written
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_user_string_stays_on_its_record_s_line(text_log: io.StringIO, hostile: str) -> None:
    logging.getLogger("node.api.server").error("API %s %s failed", "GET", hostile)
    written = text_log.getvalue()
    assert written.endswith("\n")
    [line] = written[:-1].split("\n")
    assert line.isprintable() and line.isascii(), line
    assert " ERROR node.api.server: API GET " in line


def test_a_traceback_still_follows_its_line(text_log: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("node.api.server").exception("API %s %s failed", "GET", FORGED)
    first, *rest = text_log.getvalue().splitlines()
    assert first.endswith(
        "\\n2026-12-07 06:00:00,000 ERROR node.consensus.driver: validator halted failed"
    )
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"
