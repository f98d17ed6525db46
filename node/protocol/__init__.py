"""What every node, wallet, audit and light client agree on: caps, encoding,
keys, Merkle commitments, the state tree, statements and the genesis file. Pure: no I/O.
"""
