"""The voucher ledger: a pure, deterministic state machine.

Owns transaction types, result codes, state records and their transitions.
May import only the pure leaves (``node.limits``, ``node.codec``,
``node.crypto``, ``node.merkle``, ``node.state_tree``). No I/O, clock or
randomness: block time arrives as an input.
"""
