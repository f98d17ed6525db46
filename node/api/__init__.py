"""The HTTP API (aiohttp) and dashboards: an edge of the node."""
