"""How a node writes its log (standard error): lines for people, or JSON lines for machines.

``text`` (the default): ``time level logger: message``.
``json``: one JSON object per line, for a log shipper (journald, Loki, Elastic)::

    {"time": "2026-12-07T05:31:11.123Z", "level": "info", "logger": "node.consensus.driver",
     "message": "height 12 decided in round 1", "height": 12, "round": 1}

Besides time, level, logger and message, a line carries the structured fields
its call passed with ``extra=`` (``STRUCTURED_FIELDS``): consensus lines carry
``height`` (and ``round`` where there is one), p2p lines the ``peer`` (its
public key, hex) and its ``address``. Everything a user chose (a moniker, a
peer's host) is data inside a JSON string: it cannot break a line.

Chosen by ``relance-node start --log-format json`` or ``[log] format = "json"``
in ``config.toml`` (the option wins).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from pathlib import Path
from typing import Final

from node.run import config

FORMATS: Final = config.LOG_FORMATS
TEXT, JSON = FORMATS
STRUCTURED_FIELDS: Final = ("height", "round", "peer", "address", "validator")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, int | str) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


# C0 and C1 controls, line and paragraph separators, bidirectional overrides and isolates
_UNSAFE_IN_A_LINE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, one record per line: a user string in a message (a request path,
    a name in an error) has its control, line-breaking and bidirectional characters
    escaped (``\\n``, ``\\u202e``), so it cannot forge a line or hide part of one.
    A traceback that follows the line stays as Python writes it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _UNSAFE_IN_A_LINE.sub(_escaped, super().formatMessage(record))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs (and replaces when called again)."""


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the process's log to standard error in ``log_format``.

    Replaces the handler an earlier call installed; leaves the log alone where
    another handler is already in place (a test harness capturing it, a program
    embedding the CLI), as ``logging.basicConfig`` does."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    if root.handlers:
        return
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == JSON else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def format_of_home(home: Path) -> str:
    """The ``[log] format`` of the home's ``config.toml``; text when it cannot be read
    (the node then reports the broken home itself, in that format)."""
    try:
        settings = config.parse((home / config.CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, config.ConfigError):
        return TEXT
    return settings.log_format
