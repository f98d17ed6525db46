"""Protocol upgrades agreed by governance, as this node's software meets them.

Governance schedules an upgrade with ``schedule_upgrade`` (``node.run.governance``);
the ledger records it (``records.Upgrade``). A node whose software knows the
coming protocol (``node.app.version.KNOWN_PROTOCOLS``) runs on past the height; one
that does not stops after the block before it, instead of forking, with a
message naming the release to install (``halt_reason``). The stop is the
application's answer (``node.app.ledger_app``): consensus only sees ``ApplicationHalt``.
"""

from __future__ import annotations

from typing import Final

from node.app.version import PROTOCOL_VERSION, SOFTWARE_VERSION
from node.ledger import records as r

HALT_EXIT_CODE: Final = 4  # ``relance-node start`` exits with it: not a crash, do not restart


def halt_reason(upgrade: r.Upgrade | None, last_height: int, known: frozenset[str]) -> str | None:
    """Why a node at ``last_height`` that knows the protocols ``known`` must stop, if it must."""
    if upgrade is None or upgrade.protocol in known or upgrade.height > last_height + 1:
        return None
    return (
        f"the network switches to protocol {upgrade.protocol} at height {upgrade.height} "
        f"(agreed by governance); this software (relance {SOFTWARE_VERSION}, protocol "
        f"{PROTOCOL_VERSION}) does not know it: stopped after block {upgrade.height - 1}. "
        f"Install relance {upgrade.software} or later and start the node again."
    )
