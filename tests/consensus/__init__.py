"""Consensus tests: records, the pure state machine, the signer, seeded simulations."""
