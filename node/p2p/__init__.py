"""Authenticated, encrypted TCP links between nodes.

X25519 ephemeral keys, Ed25519-signed handshake, AEAD per frame,
length-prefixed frames with a size cap, reconnection with backoff, bounded
send queues. Knows nothing of consensus or vouchers; may import the pure
leaves only.
"""
