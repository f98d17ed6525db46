"""``tools.simulate``: the command line over the simulated town (``node.devnet.town``).

``python -m tools.simulate --devnet D`` plays the town's seeded plan on a
running devnet through the HTTP API (``node.devnet.town.drive``). The town itself
lives in ``node.devnet.town`` so the devnet demo (``make run``) plays it too.
May import ``node``; nothing imports it.
"""
