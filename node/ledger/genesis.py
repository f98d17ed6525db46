"""The ledger state at height 0, derived from the genesis document."""

from __future__ import annotations

from node.ledger import records as r
from node.protocol.genesis import Genesis


def initial_state(genesis: Genesis) -> dict[bytes, bytes]:
    """Every key and value the ledger holds before the first block."""
    state: dict[bytes, bytes] = {
        r.params_key(): r.Params(
            genesis.chain_id, genesis.bank.public_key, genesis.limits.amount_max_cents
        ).encode(),
        r.bank_key(genesis.bank.public_key): r.Bank(genesis.bank.name, 0).encode(),
    }
    for issuer in genesis.issuers:
        record = r.Issuer(issuer.name, issuer.territory, issuer.zones, 0, 0, 0, 0, 0)
        state[r.issuer_key(issuer.public_key)] = record.encode()
        for zone in issuer.zones:
            state[r.zone_key(zone)] = r.ZoneOwner(issuer.public_key).encode()
    validators = tuple(
        r.Validator(v.public_key, v.power, v.name, v.role) for v in genesis.validators
    )
    state[r.validators_key()] = r.Validators(validators, (), 0).encode()
    state[r.validator_history_key(1)] = r.ValidatorEra(validators).encode()
    for auditor in genesis.auditors:
        state[r.auditor_key(auditor.public_key)] = r.Auditor(auditor.name).encode()
    return state
