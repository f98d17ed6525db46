"""Durable storage in LevelDB (plyvel): blocks, certificates, state, indexes.

One synced write batch per block. Holds bytes, not domain rules; may import
the pure leaves only.
"""
