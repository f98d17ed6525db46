"""A node for process tests: ``python -m tools.faults.node start --home H``.

The same daemon as ``relance-node start`` (``node.run.daemon.run``), with test
hooks (``node.run.hooks.NodeHooks``) built here from this process's environment.
Only this entry point reads these variables; an installed node started by
``relance-node start`` ignores them all (``tests/node/test_views_process.py``).

- ``RELANCE_TEST_BYZANTINE=double-prevote,double-propose,invalid-block:<kind>``
  and ``RELANCE_TEST_JOURNAL=<path>``: ``tools.faults.byzantine``.
- ``RELANCE_TEST_SETTLEMENT_CRASH=<point>`` (one of
  ``node.settlement.service.CRASH_POINTS``): the process SIGKILLs itself there.
- ``RELANCE_TEST_VIEW_RAISE=<view>@<height>[,...]``: that derived view raises
  ``InjectedFault`` the first time it is fed that block (a rebuild then passes it).
- ``RELANCE_TEST_NEXT_PROTOCOL=<protocol>``: this node's software also knows that
  protocol (the "upgraded" release of an upgrade test): a governance upgrade to it
  does not stop this node (``node.app.upgrades``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final

from node.protocol.crypto import Signer
from node.run import daemon
from node.run.hooks import ConsensusInstruments, NodeHooks
from node.settlement.service import CRASH_POINTS
from node.views.base import DerivedView, FedBlock
from tools.faults import byzantine

logger = logging.getLogger(__name__)

ENV_BYZANTINE: Final = byzantine.ENV_BYZANTINE
ENV_JOURNAL: Final = byzantine.ENV_JOURNAL
ENV_SETTLEMENT_CRASH: Final = "RELANCE_TEST_SETTLEMENT_CRASH"
ENV_VIEW_RAISE: Final = "RELANCE_TEST_VIEW_RAISE"
ENV_NEXT_PROTOCOL: Final = "RELANCE_TEST_NEXT_PROTOCOL"
TEST_VARIABLES: Final = (
    ENV_BYZANTINE,
    ENV_JOURNAL,
    ENV_SETTLEMENT_CRASH,
    ENV_VIEW_RAISE,
    ENV_NEXT_PROTOCOL,
)
USAGE: Final = "usage: python -m tools.faults.node start --home DIR"


class InjectedFault(RuntimeError):
    """Raised by a view on purpose (``RELANCE_TEST_VIEW_RAISE``)."""


class RaisingView:
    """``inner``, except that it raises once, the first time it is fed ``height``."""

    def __init__(self, inner: DerivedView, height: int) -> None:
        self.inner = inner
        self._height = height
        self._raised = False

    @property
    def name(self) -> str:
        return self.inner.name

    def height(self) -> int:
        return self.inner.height()

    def apply(self, fed: FedBlock) -> None:
        if fed.height == self._height and not self._raised:
            self._raised = True
            raise InjectedFault(f"{self.name} made to raise at block {fed.height}")
        self.inner.apply(fed)

    def reset(self) -> None:
        self.inner.reset()


def parse_view_faults(text: str) -> dict[str, int]:
    """``history@12,analytics@30`` -> {"history": 12, "analytics": 30}."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, at, height = item.partition("@")
        if not at or not height.isdigit() or int(height) < 1 or not name:
            raise ValueError(f"{ENV_VIEW_RAISE}: {item!r} is not <view>@<height>")
        out[name] = int(height)
    return out


def crash_at(point: str) -> Callable[[str], None]:
    if point not in CRASH_POINTS:
        raise ValueError(f"{ENV_SETTLEMENT_CRASH}: {point!r} is not one of {CRASH_POINTS}")

    def crash(name: str) -> None:
        if name == point:
            logger.warning("settlement: SIGKILL at %s (%s)", name, ENV_SETTLEMENT_CRASH)
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def hooks_from_environment(environ: Mapping[str, str]) -> NodeHooks:
    """The hooks the environment asks for (none asked: a production node's)."""
    hooks = NodeHooks()
    if environ.get(ENV_BYZANTINE) or environ.get(ENV_JOURNAL):

        def instruments(key: Signer, chain_id: str) -> ConsensusInstruments | None:
            return byzantine.from_environment(environ, key, chain_id)

        hooks = NodeHooks(instruments, hooks.settlement_crash, hooks.wrap_view)
    point = environ.get(ENV_SETTLEMENT_CRASH)
    if point:
        hooks = NodeHooks(hooks.instruments, crash_at(point), hooks.wrap_view)
    faults = parse_view_faults(environ.get(ENV_VIEW_RAISE, ""))
    if faults:

        def wrap(view: DerivedView) -> DerivedView:
            height = faults.get(view.name)
            return view if height is None else RaisingView(view, height)

        hooks = NodeHooks(hooks.instruments, hooks.settlement_crash, wrap)
    protocol = environ.get(ENV_NEXT_PROTOCOL)
    if protocol:
        hooks = replace(hooks, protocols=hooks.protocols | {protocol})
    return hooks


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "start" or argv[1] != "--home":
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        hooks = hooks_from_environment(os.environ)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return daemon.run(Path(argv[2]), hooks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
