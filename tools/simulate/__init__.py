"""``tools.simulate``: a realistic town (``town``) and its drivers (``drive``).

The town is a seeded plan of transactions with block times; ``drive`` submits
it to a running devnet through the HTTP API (``python -m tools.simulate``).
Tests feed the same plan to an in-process node with a fake block clock.
May import ``node`` (transactions, keys); nothing imports it.
"""
