"""The voucher ledger: a pure, deterministic state machine.

Owns transaction types, result codes, state records and their transitions.
May import only the pure leaves (``node.protocol.limits``, ``node.protocol.codec``,
``node.protocol.crypto``, ``node.protocol.merkle``, ``node.protocol.state_tree``). No I/O, clock or
randomness: block time arrives as an input.
"""
