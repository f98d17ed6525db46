"""The independent audit (``relance-audit``): replays a chain from its
genesis file and checks every block, the books and the statements.
"""
