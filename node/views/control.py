"""``relance-node views`` and a node, through files in the node's home.

A running node holds its LevelDB locks, so the command does not open the
stores: it leaves a request, and reads what the node last wrote.

- ``<home>/views/requests/rebuild-<name>``: written by ``views rebuild``;
  the node takes it within ``limits.VIEW_CONTROL_POLL_S`` (or at its next
  start), deletes it and rebuilds that view from the blocks.
- ``<home>/views/status.json``: rewritten by the node as often, atomically:
  its pid, the time, and every view's state, height, lag and last error.

The home is the operator's: whoever may write it may run the node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from node.protocol import limits
from node.views.base import ViewStatus

logger = logging.getLogger(__name__)

VIEWS_DIR: Final = "views"
REQUESTS_DIR: Final = "requests"
STATUS_FILE: Final = "status.json"
REBUILD_PREFIX: Final = "rebuild-"
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")
REQUESTS_READ_MAX: Final = 64  # request files looked at per poll
STALE_AFTER_S: Final = 5 * limits.VIEW_CONTROL_POLL_S + 5


def requests_dir(home: Path) -> Path:
    return home / VIEWS_DIR / REQUESTS_DIR


def status_path(home: Path) -> Path:
    return home / VIEWS_DIR / STATUS_FILE


def request_rebuild(home: Path, name: str) -> Path:
    """Leave a rebuild request for the node of ``home`` (running or not)."""
    if NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not a view name")
    folder = requests_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (REBUILD_PREFIX + name)
    path.write_text(f"{time.time_ns() // 1_000_000}\n", encoding="ascii")
    return path


def take_requests(home: Path) -> list[str]:
    """The views asked to be rebuilt, their request files removed (bounded per call)."""
    folder = requests_dir(home)
    if not folder.is_dir():
        return []
    names = []
    for entry in sorted(folder.iterdir())[:REQUESTS_READ_MAX]:
        name = entry.name.removeprefix(REBUILD_PREFIX)
        entry.unlink(missing_ok=True)
        if entry.name.startswith(REBUILD_PREFIX) and NAME_PATTERN.fullmatch(name):
            names.append(name)
        else:
            logger.warning("views: ignored the request file %r", entry.name)
    return names


def status_document(
    statuses: Sequence[ViewStatus], pid: int, now_ms: int, taken: Mapping[str, int]
) -> dict[str, object]:
    """``taken``: when the node last took a rebuild request, by view (ms)."""
    return {
        "pid": pid,
        "written_ms": now_ms,
        "views": [
            {
                "name": s.name,
                "state": s.state.value,
                "height": s.height,
                "lag": s.lag,
                "failures": s.failures,
                "error": s.error,
                "failed_height": s.failed_height,
                "failed_tx": s.failed_tx,
                "rebuild_taken_ms": taken.get(s.name),
            }
            for s in statuses
        ],
    }


def write_status(home: Path, document: dict[str, object]) -> None:
    """Atomically, through a temporary file the node creates itself: a symlink left in
    its place is removed, never followed (the node would write wherever it points)."""
    path = status_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, path)


def read_status(home: Path) -> dict[str, object] | None:
    try:
        value = json.loads(status_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_live(document: dict[str, object], now_ms: int) -> bool:
    """Whether the node that wrote ``document`` still runs (its pid, a fresh write)."""
    pid, written = document.get("pid"), document.get("written_ms")
    if not isinstance(pid, int) or not isinstance(written, int):
        return False
    if now_ms - written > STALE_AFTER_S * 1000:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def serve_control(
    home: Path,
    names: Sequence[str],
    rebuild: Callable[[str], None],
    statuses: Callable[[], Sequence[ViewStatus]],
    poll_s: float = limits.VIEW_CONTROL_POLL_S,
) -> None:
    """The node's side, until cancelled: take requests, write the status, every ``poll_s``."""
    taken: dict[str, int] = {}
    while True:
        try:
            for name in take_requests(home):
                if name in names:
                    rebuild(name)
                    taken[name] = time.time_ns() // 1_000_000
                else:
                    logger.warning("views: no view is called %r (%s)", name, ", ".join(names))
            now_ms = time.time_ns() // 1_000_000
            write_status(home, status_document(statuses(), os.getpid(), now_ms, taken))
        except OSError as exc:
            logger.warning("views: cannot read requests or write the status: %s", exc)
        await asyncio.sleep(poll_s)
