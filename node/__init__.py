"""Relance node: the ledger, its replication and its interfaces.

Layers, from pure to impure (imports point downward only; see the
import-linter contracts in pyproject.toml):

1. ``node.limits``, ``node.codec``, ``node.crypto``, ``node.merkle`` — pure leaves.
2. ``node.ledger`` — the voucher state machine, pure and deterministic.
3. ``node.store`` (LevelDB) and ``node.p2p`` (links) — I/O without domain rules.
4. ``node.consensus`` — Tendermint; transactions are opaque bytes there.
5. ``node.app`` — the one adapter between consensus and ledger.
6. ``node.api``, ``node.cli`` — the edges.
"""
