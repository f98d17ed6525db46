"""Development networks on one machine (``relance-node devnet``) and their
demo data: a month of a simulated town's certified history.
"""
