"""The CLI wallet for every role (``relance-wallet``): an edge of the system.

Owns keys (``keystore``), the commune's voucher book (``book``), voucher and
authorization codes and their QR images (``voucher``), paper letters
(``letters``), e-mail delivery (``mail``), the HTTP client (``client``) and the
click commands (``cli``, ``context``, ``commands/``).

May import the pure leaves of the node (``node.protocol.crypto``, ``node.protocol.codec``,
``node.protocol.limits``, ``node.protocol.genesis``), the transaction encoding
(``node.ledger.tx``, ``node.ledger.codes``) and the token codec
(``node.api.tokens``); it reaches nodes over HTTP only (an import-linter
contract forbids the store, p2p, the node daemon and the API server).
"""
