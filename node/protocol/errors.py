"""One error base per layer, and one "invariant broken" class per layer.

Every error the project raises on purpose derives from ``RelanceError`` through the base of
the layer that raises it, so a caller catches a layer's refusals with one name and never
a stranger's. An ``...InvariantBroken`` says the code or the data on disk is wrong (a
committed block missing, a fold that does not add up): a crash with a named cause, never a
refusal to show to a user. They stay ``RuntimeError`` too, as the bare raises they replace.

A pure leaf: the standard library only, importable by every layer.
"""

from __future__ import annotations


class RelanceError(Exception):
    """The root of the project's own errors."""


class ProtocolError(RelanceError):
    """The protocol's primitives and documents: codec, genesis, settings, governance."""


class LedgerError(RelanceError):
    """The ledger's state machine."""


class LedgerInvariantBroken(LedgerError, RuntimeError):
    """The ledger's state contradicts itself."""


class ConsensusError(RelanceError):
    """Consensus: the step function, the driver, the signer."""


class ConsensusInvariantBroken(ConsensusError, RuntimeError):
    """Consensus reached a state its rules exclude."""


class StorageError(RelanceError):
    """The block store and the history indexes (``node.store.blockstore.StoreError``)."""


class StoreInvariantBroken(StorageError, RuntimeError):
    """What is committed is missing or does not decode."""


class P2PError(RelanceError):
    """The peer-to-peer network."""


class P2PInvariantBroken(P2PError, RuntimeError):
    """The network layer was used against its contract."""


class AppError(RelanceError):
    """The application adapter between consensus and the ledger (``node.app.ledger_app``)."""


class AppInvariantBroken(AppError, RuntimeError):
    """A certified block does not execute, or the adapter lost track."""


class ApiProblem(RelanceError):
    """The HTTP API (``node.api.problems.ApiError`` is the problem+json answer)."""


class ApiInvariantBroken(ApiProblem, RuntimeError):
    """What the API reads from the store contradicts itself: a 500, logged."""


class ViewError(RelanceError):
    """Derived views (``node.views``) and analytics folds."""


class ViewInvariantBroken(ViewError, RuntimeError):
    """A view's fold does not add up, or its input is missing."""


class SettlementError(RelanceError):
    """The bank's settlement: journal, files, statements, settings."""


class SettlementInvariantBroken(SettlementError, RuntimeError):
    """The settlement journal and the ledger disagree."""


class NodeRunError(RelanceError):
    """Running a node: its home, devnet, backup, TLS, state sync, the HTTP client."""


class ToolError(RelanceError):
    """The tools outside the node: audit, bench, faults."""


class ToolInvariantBroken(ToolError, RuntimeError):
    """A tool's own bookkeeping went wrong."""


class WalletProblem(RelanceError):
    """The wallet (``wallets.exits.WalletError`` is the exit-coded refusal shown to a user)."""


class WalletInvariantBroken(WalletProblem, RuntimeError):
    """The wallet's own work went wrong (a library it drives did not do what it asked)."""
