"""The application between consensus and the ledger: the one commit path
(``ledger_app``, also used by certified histories, the bench and the audit),
signature checks, this software's versions and the protocol upgrades it meets.
"""
