"""Relance node: the ledger, its replication and its interfaces.

One folder per layer, from pure to impure (imports point downward only; the
import-linter contracts in pyproject.toml enforce it):

1. ``node.protocol`` (caps, encoding, keys, Merkle, state tree, genesis, light
   client) and ``node.text`` (names, escaping) — pure leaves.
2. ``node.ledger`` — the voucher state machine, pure and deterministic.
3. ``node.store`` (blocks) and ``node.p2p`` (links, gossip) — I/O without domain
   rules.
4. ``node.consensus`` — Tendermint; transactions are opaque bytes there.
5. ``node.app`` — the one adapter between consensus and ledger, its commit path.
6. ``node.views`` (history index, analytics, event feed, settlement watcher),
   ``node.analytics``, ``node.settlement`` — what follows committed blocks.
7. ``node.api`` (HTTP), ``node.client`` (the HTTP client of wallets and tools),
   ``node.run`` (the command line and the composition root), ``node.devnet``.
"""
