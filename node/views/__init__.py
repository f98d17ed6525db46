"""Derived views: data rebuilt from the committed blocks, never part of consensus.

``base`` (the protocol and the block a view is fed) is pure; ``runner`` runs
one asyncio task per view, following the block store at its own pace;
``control`` is the file protocol between ``relance-node views`` and a node.
"""
