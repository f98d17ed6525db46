"""Governance proposal files (``node.run.governance``): what validators pass around.

Round trips, approvals added and replaced, and every way a file can be wrong named
before anything reaches the ledger; a file approved by more than 2/3 is accepted by
the ledger as a transaction."""

from __future__ import annotations

import copy
import json

import pytest

from node.ledger import tx as t
from node.ledger.codes import Result
from node.run.governance import Proposal, ProposalError, from_json, to_json
from tests.ledger.world import CHAIN_ID, World, signer

NEW = signer("dinant")


def _admit() -> Proposal:
    return Proposal(CHAIN_ID, t.AdmitIssuer(NEW.public_key, "Ville de Dinant", "Dinant",
                                            ("DIN-1", "DIN-2"), ()))  # fmt: skip


def test_a_proposal_survives_its_file_with_its_approvals() -> None:
    w = World()
    proposal = _admit()
    for v in w.validators[:3]:
        proposal = proposal.approved_by(v)
    text = json.dumps(to_json(proposal))
    assert from_json(json.loads(text)) == proposal
    assert set(proposal.approvers) == {v.public_key for v in w.validators[:3]}
    again = proposal.approved_by(w.validators[0])  # approving twice replaces
    assert len(again.payload.approvals) == 3

    change = Proposal(
        CHAIN_ID,
        t.ChangeValidators((t.ValidatorEntry(NEW.public_key, 2, "Dinant", "commune"),), 40, ()),
    ).approved_by(w.validators[1])
    assert from_json(to_json(change)) == change
    assert "from height 40" in change.describe()[0]


def _broken(change: str) -> dict[str, object]:
    doc = to_json(_admit().approved_by(World().validators[0]))
    edited = copy.deepcopy(doc)
    if change == "name after approval":
        edited["name"] = "Ville de Ciney"
    elif change == "other chain":
        edited["chain_id"] = "another-chain"
    elif change == "format":
        edited["format"] = "something-else"
    elif change == "kind":
        edited["kind"] = "fund"
    elif change == "short signature":
        edited["approvals"][0]["signature"] = "ab"  # type: ignore[index]
    elif change == "approved twice":
        edited["approvals"] = [*edited["approvals"], *edited["approvals"]]  # type: ignore[misc]
    elif change == "bad key":
        edited["issuer"] = "zz"
    return edited


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("name after approval", "does not verify"),
        ("other chain", "does not verify"),
        ("format", "relance-governance"),
        ("kind", "kind must be"),
        ("short signature", "signature"),
        ("approved twice", "approved twice"),
        ("bad key", "issuer"),
    ],
)
def test_a_broken_file_is_named(change: str, message: str) -> None:
    with pytest.raises(ProposalError, match=message):
        from_json(_broken(change))


def test_the_ledger_takes_a_file_approved_by_more_than_two_thirds() -> None:
    w = World()
    proposal = _admit()
    short = proposal.approved_by(w.validators[0]).approved_by(w.validators[1])
    sender = w.validators[0]
    refused = w.apply(short.transaction(sender, 0).encode())
    assert [o.result for o in refused.outcomes] == [Result.INSUFFICIENT_APPROVALS]
    enough = short.approved_by(w.validators[2])
    assert w.apply(enough.transaction(sender, 0).encode()).all_ok


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("power", 2**64, "power must be an integer from 1"),
        ("effective_height", 2**63, "effective_height must be an integer from 1"),
        ("chain_id", "c" * 49, "chain_id must be a string of 1 to 48"),
        ("name", "n" * 121, "name must be a string of 1 to 120"),
    ],
)
def test_values_out_of_range_are_named_not_crashes(field: str, value: object, message: str) -> None:
    change = Proposal(
        CHAIN_ID,
        t.ChangeValidators((t.ValidatorEntry(NEW.public_key, 1, "Dinant", "commune"),), 40, ()),
    )
    doc = to_json(change)
    if field in ("power", "name"):
        doc["validators"][0][field] = value  # type: ignore[index]
    else:
        doc[field] = value
    with pytest.raises(ProposalError, match=message):
        from_json(doc)


def _upgrade() -> Proposal:
    return Proposal(CHAIN_ID, t.ScheduleUpgrade("tx2.block2", "0.9.0", 40, ()))


def test_an_upgrade_survives_its_file_and_says_what_to_install() -> None:
    w = World()
    proposal = _upgrade().approved_by(w.validators[0]).approved_by(w.validators[2])
    doc = to_json(proposal)
    assert (doc["kind"], doc["protocol"], doc["software"], doc["height"]) == (
        "schedule_upgrade", "tx2.block2", "0.9.0", 40,
    )  # fmt: skip
    assert from_json(json.loads(json.dumps(doc))) == proposal
    said = "\n".join(proposal.describe())
    assert "upgrade to the protocol tx2.block2 from height 40" in said
    assert "software that knows it: 0.9.0" in said


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("protocol", "", "protocol must be a string of 1 to 32"),
        ("protocol", "tx2 block2", "protocol must be letters, digits"),
        ("software", "0.9.0\n", "software must be letters, digits"),
        ("software", 9, "software must be a string"),
        ("height", 0, "height must be an integer from 1"),
        ("height", True, "height must be an integer from 1"),
        ("height", 2**63, "height must be an integer from 1"),
    ],
)
def test_a_broken_upgrade_file_is_named(field: str, value: object, message: str) -> None:
    doc = to_json(_upgrade())
    doc[field] = value
    with pytest.raises(ProposalError, match=message):
        from_json(doc)


def test_an_upgrade_changed_after_approval_does_not_verify() -> None:
    doc = to_json(_upgrade().approved_by(World().validators[0]))
    doc["software"] = "0.9.1"
    with pytest.raises(ProposalError, match="does not verify"):
        from_json(doc)
