"""Tendermint BFT consensus. Transactions are opaque bytes here.

May import the pure leaves (``node.limits``, ``node.codec``, ``node.crypto``,
``node.merkle``); never ``node.ledger`` — it reaches the application only
through the narrow interface in ``node.consensus.app_interface``.
"""
