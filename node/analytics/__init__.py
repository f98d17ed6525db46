"""Analytics for communes: a derived view of the committed history, never consensus.

Owns: the fold of committed transactions into per-issuer events
(``tracker``), the pure aggregate functions (``aggregate``), statistical
disclosure control (``privacy``: k distinct holders, secondary suppression),
the published report (``report``), and the in-memory index rebuilt from the
blocks at start-up and maintained after each finalised block (``index``).

May import: ``node.ledger`` (transactions), ``node.protocol.crypto``, the standard
library (``zoneinfo`` for Brussels time). No I/O, no clock, no randomness:
block time is the only time. Nothing in consensus or the ledger imports it.
"""
