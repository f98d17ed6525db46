"""What consensus needs from the application, split by caller.

Consensus sees transactions as opaque bytes and never imports the ledger;
the one adapter (``node.app.ledger_app``) implements these protocols on top of it.
Execution is immediate: the proposer executes its transactions before
proposing (the header carries the state root after them), validators
re-execute in ``process_proposal`` and compare.

May import ``node.consensus.types`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from node.consensus.types import Block, Certificate, CertifiedBlock, ValidatorSet


class ApplicationHalt(Exception):  # a request, not an error of the caller
    """The application asks the node to stop cleanly after the block it just finalised
    (its software does not know the rules of the next height). Raised by
    ``finalize_block`` once the block is durable, or before consensus starts; the
    driver lets it through, and the node exits with its message."""


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    """The application's content for a block we propose, already executed."""

    txs: tuple[bytes, ...]
    state_root: bytes  # the state root after ``txs``
    next_validators_hash: bytes  # the validator set of the next height, after ``txs``


@dataclass(frozen=True, slots=True)
class LastBlock:
    """The last finalised block (height 0: the genesis, its hash and time)."""

    height: int
    block_hash: bytes
    time_ms: int


class MempoolApplication(Protocol):
    """Called by the mempool (later): admission of a gossiped or submitted transaction."""

    def check_tx(self, tx: bytes) -> bool: ...


class ConsensusApplication(Protocol):
    """Called by the consensus driver, on its one task, never concurrently."""

    def prepare_proposal(
        self, height: int, time_ms: int, previous_block_hash: bytes
    ) -> PreparedBlock:
        """Pick and execute transactions for a block at ``height`` stamped ``time_ms``."""
        ...

    def process_proposal(self, block: Block) -> bool:
        """Re-execute ``block`` on the last finalised state: every tx applies, roots match."""
        ...

    def finalize_block(self, block: Block, certificate: Certificate) -> None:
        """Persist the decided block, its certificate and its state: durable when it returns."""
        ...

    def last_block(self) -> LastBlock: ...

    def validator_set(self, height: int) -> ValidatorSet:
        """The validators of ``height`` (known up to the last finalised height + 1)."""
        ...

    def certified_block(self, height: int) -> CertifiedBlock | None:
        """A finalised block with its certificate, to help a peer that lags behind."""
        ...


class Application(ConsensusApplication, MempoolApplication, Protocol):
    """Both faces, as the adapter implements them."""
