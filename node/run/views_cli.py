"""``relance-node views``: show and rebuild a node's derived views (``node.views``)."""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path
from typing import Final, NoReturn

import click

from node.api.feeds import COMMITS, EVENTS, METRICS
from node.settlement.service import SETTINGS_FILE as SETTLEMENT_SETTINGS
from node.settlement.service import SETTLEMENT
from node.views import control
from node.views.analytics import ANALYTICS
from node.views.history import HISTORY

VIEWS: Final = (COMMITS, METRICS, EVENTS, HISTORY, ANALYTICS, SETTLEMENT)
WAIT_POLL_S: Final = 0.5

HomeOption = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home directory.",
)


def views_of(home: Path) -> tuple[str, ...]:
    """The views a node of ``home`` runs (the settlement watcher on the bank's node only)."""
    bank = (home / SETTLEMENT_SETTINGS).exists()
    return tuple(v for v in VIEWS if v != SETTLEMENT or bank)


@click.group(
    "views",
    help="Show and rebuild a node's derived views: commits (waiters of ?wait=true), "
    "metrics (block metrics), events (the event stream), history (the history index and "
    "merchants' totals), analytics, settlement (the bank's watcher).\n\n"
    "A running node holds its stores' locks, so these commands talk to it through "
    "files in its home: it writes views/status.json every second, and takes a request "
    "left in views/requests/ within a second (or at its next start).\n\n"
    "Examples:\n\n"
    "  relance-node views status --home ~/relance\n\n"
    "  relance-node views rebuild analytics --home ~/relance",
)
def views_group() -> None:
    pass


@views_group.command(help="Each view's state, height, lag behind the chain and last error.")
@HomeOption
@click.option("--json", "as_json", is_flag=True, help="The status document as JSON.")
def status(home: Path, as_json: bool) -> None:
    """Example: relance-node views status --home ~/relance"""
    document = control.read_status(home)
    if document is None:
        _fail(f"{home} has no view status: the node has not run since it was made")
    now_ms = time.time_ns() // 1_000_000
    live = control.is_live(document, now_ms)
    if as_json:
        click.echo(json.dumps({**document, "running": live}, indent=1))
        return
    written = document.get("written_ms")
    when = (
        datetime.datetime.fromtimestamp(written / 1000, tz=datetime.UTC).isoformat(
            timespec="seconds"
        )
        if isinstance(written, int)
        else "?"
    )
    said = "running" if live else "NOT running (last known state)"
    click.echo(f"node {said}, pid {document.get('pid')}, as of {when}")
    click.echo(f"{'VIEW':<12} {'STATE':<11} {'HEIGHT':>8} {'LAG':>6} {'FAILURES':>8}  LAST ERROR")
    views = document.get("views")
    for view in views if isinstance(views, list) else []:
        if not isinstance(view, dict):
            continue
        click.echo(
            f"{view.get('name')!s:<12} {view.get('state')!s:<11} {view.get('height')!s:>8} "
            f"{view.get('lag')!s:>6} {view.get('failures')!s:>8}  {view.get('error') or ''}"
        )


@views_group.command(
    help="Rebuild a view from the blocks: now if the node runs, else at its start."
)
@click.argument("name")
@HomeOption
@click.option(
    "--wait",
    "wait_s",
    default=60.0,
    show_default=True,
    help="Seconds to wait for a running node to serve the view again (0: do not wait).",
)
def rebuild(name: str, home: Path, wait_s: float) -> None:
    """Example: relance-node views rebuild analytics --home ~/relance"""
    known = views_of(home)
    if name not in known:
        _fail(f"no view is called {name!r}: one of {', '.join(known)}")
    if not home.is_dir():
        _fail(f"{home} is not a node home")
    asked_ms = time.time_ns() // 1_000_000
    control.request_rebuild(home, name)
    document = control.read_status(home)
    if document is None or not control.is_live(document, asked_ms):
        click.echo(f"{name}: the node is not running; it rebuilds the view at its next start")
        return
    click.echo(f"{name}: rebuild asked of the running node (pid {document.get('pid')})")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = _state_after(home, name, asked_ms)
        if state == "serving":
            click.echo(f"{name}: rebuilt, serving")
            return
        if state == "failed":
            _fail(f"{name}: failed again while rebuilding; see 'views status' and the node log")
        time.sleep(WAIT_POLL_S)
    if wait_s > 0:
        click.echo(
            f"{name}: still {_state_after(home, name, asked_ms) or 'asked'}; see 'views status'"
        )


def _state_after(home: Path, name: str, asked_ms: int) -> str | None:
    """The view's state once the node took the request left at ``asked_ms`` (None: not yet)."""
    document = control.read_status(home)
    if document is None:
        return None
    views = document.get("views")
    for view in views if isinstance(views, list) else []:
        if isinstance(view, dict) and view.get("name") == name:
            taken = view.get("rebuild_taken_ms")
            if not isinstance(taken, int) or taken < asked_ms:
                return None
            state = view.get("state")
            return state if isinstance(state, str) else None
    return None


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
