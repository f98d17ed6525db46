"""Benchmarks (``relance-bench``): the ledger, the audit, a cluster, the
state tree; each prints ratios against a limit measured in the same run.
"""
