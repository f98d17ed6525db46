"""What this node's software is and which protocol it speaks.

- ``SOFTWARE_VERSION``: the installed ``relance`` package's version (from its
  metadata; ``unknown`` when run from a source tree that was never installed).
- ``PROTOCOL_VERSION``: the encodings this node reads and writes, as
  ``tx<N>.block<M>`` — ``N`` the transaction format (``node.ledger.tx.VERSION``),
  ``M`` the consensus record format of blocks, votes and certificates
  (``node.consensus.types.VERSION``). Two nodes speak the same protocol when
  these strings are equal; a new version of either format changes it.

Reported by ``GET /v1/status`` and the ``relance_build_info`` metric.
"""

from __future__ import annotations

from importlib import metadata
from typing import Final

from node.consensus.types import VERSION as BLOCK_VERSION
from node.ledger.tx import VERSION as TX_VERSION

PACKAGE: Final = "relance"


def software_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


SOFTWARE_VERSION: Final = software_version()
PROTOCOL_VERSION: Final = f"tx{TX_VERSION}.block{BLOCK_VERSION}"

KNOWN_PROTOCOLS: Final = frozenset({PROTOCOL_VERSION})
"""The protocols this software can run: a governance upgrade (``schedule_upgrade``) to any
other stops this node before the upgrade's height (``node.app.upgrades``)."""
