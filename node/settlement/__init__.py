"""Bank settlement: the bank's private side of payouts (issue 8).

Owns the bank's local, never-replicated store (merchants' IBANs, the payout
journal, the pain.001 files it wrote, the statements it imported), the
settlement service that follows committed payouts on the bank's node, writes
ISO 20022 pain.001 credit-transfer files, imports camt.053/054 (or a CSV)
confirmations and posts ``settle`` transactions, and the commune statement.

May import the ledger's records and transactions, the store and the ledger
adapter (``node.app.ledger_app``); never the consensus internals, the API or the edges.
``refhash`` and ``money`` are pure and are also used by the wallet.
"""
