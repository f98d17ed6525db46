"""Tendermint BFT consensus. Transactions are opaque bytes here.

May import the pure leaves (``node.protocol.limits``, ``node.protocol.codec``,
``node.protocol.crypto``,
``node.protocol.merkle``); never ``node.ledger`` — it reaches the application only
through the narrow interface in ``node.consensus.app_interface``.
"""
