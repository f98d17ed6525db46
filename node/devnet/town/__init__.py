"""A realistic simulated town, and what plays it on a network.

Owns: the town itself (``model``: zones, merchants by NACE category,
households, opening hours, weekly rhythm; a seeded plan of a whole history),
its live rhythm (``rhythm``: the same town hour by simulated hour, as the
devnet demo plays it), and a driver that submits a plan to a running devnet
(``drive``, used by ``python -m tools.simulate``).

May import: ``node.ledger.tx``, ``node.protocol.crypto``, ``node.protocol.genesis``,
``node.run.config`` and ``node.devnet.network`` (to read a devnet's files), the standard
library. ``model`` and ``rhythm`` are pure: randomness is a seeded input and
time is an argument. Imported by ``node.devnet.demo`` and by ``tools.simulate``.
"""
