"""The checkers on a known-good history (every transaction kind) and on tampered copies:
each check passes on the good one and names the fault on the bad one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from node.consensus.types import VoteKind
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol.crypto import digest
from node.protocol.genesis import Genesis
from tools.audit.history import demo_history
from tools.faults import checkers as ck
from tools.faults.workload import Call, History, Outcome


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Genesis, Path, ck.NodeChain]:
    home = tmp_path_factory.mktemp("home")
    genesis, _, writer = demo_history(home / "data")
    writer.close()
    return genesis, home, ck.read_chain(0, home, genesis)


def _calls(chain: ck.NodeChain, genesis: Genesis) -> History:
    calls = History()
    for row in chain.blocks:
        for data in row.txs:
            signed = t.decode_tx(data, genesis.chain_id)
            assert isinstance(signed, t.SignedTx)
            call = Call(0, "x", signed.tx.sender, signed.tx.sequence, signed.tx_id, data, 0.0)
            call.outcome, call.height = Outcome.OK, row.height
            calls.calls.append(call)
    return calls


def test_a_good_history_passes_every_check(
    history: tuple[Genesis, Path, ck.NodeChain],
) -> None:
    genesis, home, chain = history
    assert chain.top == 12
    findings = [
        ck.check_chain_integrity(chain, genesis),
        ck.check_agreement([chain, chain]),
        ck.check_conservation(chain),
        *ck.check_history(chain, _calls(chain, genesis), genesis),
        ck.check_audit(0, home, genesis),
    ]
    assert all(f.ok for f in findings), findings


def test_a_fork_and_a_broken_link_are_found(history: tuple[Genesis, Path, ck.NodeChain]) -> None:
    genesis, _, chain = history
    forked = ck.NodeChain(1, list(chain.blocks), chain.state)
    forked.blocks[5] = replace(chain.blocks[5], hash=digest(b"another block"))
    assert not ck.check_agreement([chain, forked]).ok
    assert "height 6" in ck.check_agreement([chain, forked]).detail
    assert not ck.check_chain_integrity(forked, genesis).ok


def test_money_out_of_thin_air_is_found(history: tuple[Genesis, Path, ck.NodeChain]) -> None:
    _, _, chain = history
    state = dict(chain.state)
    key = next(k for k in state if k[:1] == r.Prefix.ISSUER.value)
    issuer = r.Issuer.decode(state[key])
    state[key] = replace(issuer, escrow_cents=issuer.escrow_cents + 1).encode()
    found = ck.check_conservation(ck.NodeChain(0, chain.blocks, state))
    assert not found.ok and issuer.name in found.detail


def test_lost_duplicated_and_phantom_transactions_are_found(
    history: tuple[Genesis, Path, ck.NodeChain],
) -> None:
    genesis, _, chain = history
    calls = _calls(chain, genesis)
    lost = replace(calls.calls[0], tx_id=digest(b"never committed"))
    phantom = replace(calls.calls[1], outcome=Outcome.FAILED)
    calls.calls += [lost, phantom]
    doubled = ck.NodeChain(0, [*chain.blocks, chain.blocks[7]], chain.state)  # payments again
    verdicts = {f.check: f.ok for f in ck.check_history(doubled, calls, genesis)}
    assert verdicts == {
        "no-acknowledged-loss": False,
        "at-most-once": False,
        "refused-never-applied": False,
    }


def test_an_honest_double_vote_is_found_a_byzantine_one_only_counted() -> None:
    signed = ck.Signed()
    honest, byzantine = b"h" * 32, b"b" * 32
    for key in (honest, byzantine):
        signed.votes[(key, 5, 0, VoteKind.PREVOTE)] |= {None, digest(b"x")}
    signed.proposals[(byzantine, 5, 0)] |= {(digest(b"a"), -1), (digest(b"b"), -1)}
    assert not ck.check_no_double_sign(signed, {honest: "node0"}).ok
    assert ck.check_no_double_sign(signed, {}).ok
    assert ck.equivocations(signed, byzantine) == (1, 1)


def test_evidence_in_logs_is_counted_by_key(tmp_path: Path) -> None:
    key = digest(b"validator")
    log = tmp_path / "node.log"
    log.write_text(
        f"WARNING node.consensus.driver: evidence: Equivocation by {key.hex()[:16]} at height 3\n"
        f"WARNING node.run.daemon: evidence against {key.hex()[:16]} submitted: code 0\n"
        "INFO something else\n"
    )
    assert ck.logged_evidence(log, key) == 2
    assert ck.logged_evidence(log, digest(b"other")) == 0
