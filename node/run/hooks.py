"""What a test entry point may inject into a node: the types only.

``relance-node start`` runs ``node.run.daemon.run`` with no hooks: nothing in the
node reads a test switch from its environment. The fault tooling's entry
point (``python -m tools.faults.node``) builds hooks from its own arguments and
environment (byzantine behaviours, the consensus journal, settlement crash
points, a view made to raise) and runs the same daemon with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from node.app.version import KNOWN_PROTOCOLS
from node.consensus.app_interface import ConsensusApplication
from node.consensus.driver import ConsensusSigner, Transport
from node.protocol.crypto import Signer
from node.views.base import DerivedView

SendTo = Callable[[bytes, bytes], None]  # (peer node key, consensus message bytes)
PeerKeys = Callable[[], Iterable[bytes]]


class ConsensusInstruments(Protocol):
    """Wraps the consensus driver's collaborators (``tools.faults.byzantine``)."""

    def observe(self, data: bytes) -> None:
        """A consensus message from the network."""
        ...

    def install(
        self,
        signer: ConsensusSigner,
        app: ConsensusApplication,
        transport: Transport,
        send_to: SendTo,
        peer_keys: PeerKeys,
    ) -> tuple[ConsensusSigner, ConsensusApplication, Transport]: ...

    def close(self) -> None: ...


def _no_instruments(key: Signer, chain_id: str) -> ConsensusInstruments | None:
    return None


def _no_crash(point: str) -> None:
    return None


def _same_view(view: DerivedView) -> DerivedView:
    return view


@dataclass(frozen=True, slots=True)
class NodeHooks:
    """Injected instruments; the defaults are what a production node runs."""

    instruments: Callable[[Signer, str], ConsensusInstruments | None] = field(
        default=_no_instruments
    )
    settlement_crash: Callable[[str], None] = field(default=_no_crash)
    wrap_view: Callable[[DerivedView], DerivedView] = field(default=_same_view)
    protocols: frozenset[str] = KNOWN_PROTOCOLS  # a test node may know a "next" protocol


NO_HOOKS = NodeHooks()
