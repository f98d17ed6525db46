"""The genesis ceremony (``relance-node genesis``, ``relance-wallet key sign-member``) on
real node homes made by ``relance-node init``, and the start-up check and peers it
gives a node; then the whole ceremony with the operator's commands (docs/operating.md):
four organisations on four loopback hosts start a network from it, and run it as the
guide says: a campaign, a shop and a citizen's payments, a node restarted, a backup
taken while the node runs and restored after the chain moved on, a protocol upgrade
installed host by host and scheduled by governance, a validator's node key rotated."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.consensus.signer import SignRecord
from node.devnet.network import DevnetNode, Supervisor
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import GenesisError, parse, parse_draft, render
from node.run import config, membership
from node.run.cli import main
from node.run.daemon import read_home, run
from node.run.membership import MemberError, start_settings
from node.store.blockstore import BlockStore
from tests.node.netutil import eventually, free_base_port, get_json
from tools.faults.node import ENV_NEXT_PROTOCOL
from tools.faults.procs import NodeProcesses
from wallets.cli import main as wallet_main

CHAIN = "relance-test-ceremony"


def _node(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@dataclass(frozen=True)
class Org:
    home: Path
    member_file: Path
    account: Signer


def _org(tmp: Path, n: int, name: str, role: str) -> Org:
    home = tmp / f"home{n}"
    made = _node("init", "--home", str(home), "--host", f"127.0.0.{n + 2}", "--moniker", name)
    assert made.exit_code == 0, made.output
    account = Signer(digest(f"account {n}".encode()))
    territory = name.removeprefix("Ville de ")
    issuer = [] if role == "bank" else ["--territory", territory, "--zone", f"Z{n}-1"]
    out = tmp / f"member{n}.json"
    done = _node("genesis", "member", "--home", str(home), "--chain-id", CHAIN, "--name", name,
                 "--role", role, "--p2p", f"127.0.0.{n + 2}:{26600 + 2 * n}",
                 "--api", f"http://127.0.0.{n + 2}:{26601 + 2 * n}",
                 "--account-key", account.public_key.hex(), *issuer, "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    return Org(home, out, account)


def _sign_account(org: Org) -> None:
    signed = membership.read(org.member_file).signed_by_account(org.account)
    org.member_file.write_text(membership.dumps(signed), encoding="utf-8")


@pytest.fixture
def orgs(tmp_path: Path) -> list[Org]:
    names = [("Banque", "bank"), ("Ville de Namur", "commune"), ("Ville de Mons", "commune")]
    made = [_org(tmp_path, n, name, role) for n, (name, role) in enumerate(names)]
    for org in made:
        _sign_account(org)
    return made


@pytest.fixture
def genesis_file(tmp_path: Path, orgs: list[Org]) -> Path:
    path = tmp_path / "genesis.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--genesis-time",
                 "2027-01-04T09:00:00Z", "--out", str(path)).exit_code == 0  # fmt: skip
    added = _node("genesis", "add", str(path), *(str(o.member_file) for o in orgs))
    assert added.exit_code == 0, added.output
    assert "3 validators; genesis hash" in added.output
    return path


def test_a_member_file_is_signed_by_the_node_key_and_kept_in_the_home(tmp_path: Path) -> None:
    org = _org(tmp_path, 1, "Ville de Namur", "commune")
    signed = membership.read(org.member_file)
    home = read_home(org.home)
    assert signed.member.node_key == home.node_key.public_key
    assert signed.member.p2p == "127.0.0.3:26602" and signed.account_signature is None
    assert home.settings.p2p_host == "127.0.0.3" == home.settings.api_host  # init --host
    kept = membership.read(org.home / membership.MEMBER_FILE)
    assert kept.member == signed.member
    again = _node("genesis", "member", "--home", str(org.home), "--chain-id", CHAIN, "--name",
                  "x", "--role", "region", "--p2p", "h:1", "--api", "http://h",
                  "--out", str(org.member_file))  # fmt: skip
    assert again.exit_code == 2 and "exists" in again.output
    quoted = _node("init", "--home", str(tmp_path / "other"), "--host", '127.0.0.1"\nx = "')
    assert quoted.exit_code == 2 and "is not a host name" in quoted.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--p2p", "127.0.0.3", "p2p must be HOST:PORT"),
        ("--api", "javascript:alert(1)", "api must be an http"),
        ("--chain-id", "bad chain", "chain_id may hold only"),
        ("--zone", 'Z"1', "zone"),
    ],
)
def test_a_member_file_with_a_bad_field_is_not_written(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    home = tmp_path / "home"
    assert _node("init", "--home", str(home)).exit_code == 0
    fields = {"--chain-id": CHAIN, "--p2p": "127.0.0.2:26600", "--api": "https://n.example"}
    fields[option] = value
    args = [x for pair in fields.items() for x in pair]
    zone = value if option == "--zone" else "Z-1"
    done = _node("genesis", "member", "--home", str(home), "--name", "Ville", "--role",
                 "commune", "--account-key", "ab" * 32, "--territory", "T", "--zone", zone,
                 *args, "--out", str(tmp_path / "m.json"))  # fmt: skip
    assert done.exit_code == 2 and message in done.output, done.output
    assert not (tmp_path / "m.json").exists()


def test_the_genesis_holds_every_member_as_signed(genesis_file: Path, orgs: list[Org]) -> None:
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    assert [v.name for v in genesis.validators] == ["Banque", "Ville de Namur", "Ville de Mons"]
    assert genesis.bank.public_key == orgs[0].account.public_key
    assert [i.zones for i in genesis.issuers] == [("Z1-1",), ("Z2-1",)]
    assert genesis.validators[2].p2p == "127.0.0.4:26604"
    assert genesis.validators[2].api == "http://127.0.0.4:26605"
    assert genesis.genesis_time_ms == 1_799_053_200_000
    for org in orgs:
        checked = _node("genesis", "check", str(genesis_file), "--member", str(org.member_file))
        assert checked.exit_code == 0, checked.output
        assert genesis.genesis_hash.hex() in checked.output
    hashed = _node("genesis", "hash", str(genesis_file))
    assert hashed.exit_code == 0 and hashed.output.strip() == genesis.genesis_hash.hex()


def test_a_tampered_member_file_is_refused(tmp_path: Path, orgs: list[Org]) -> None:
    path = tmp_path / "genesis.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--out", str(path)).exit_code == 0
    doc = json.loads(orgs[1].member_file.read_text(encoding="utf-8"))
    doc["p2p"] = "203.0.113.66:26600"  # an attacker's address, the signatures unchanged
    orgs[1].member_file.write_text(json.dumps(doc), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    added = _node("genesis", "add", str(path), str(orgs[0].member_file), str(orgs[1].member_file))
    assert added.exit_code == 2
    assert "the node key's signature does not match" in added.output
    assert path.read_text(encoding="utf-8") == before  # nothing added, not even the good one


def test_a_member_whose_account_key_has_not_signed_is_refused(tmp_path: Path) -> None:
    org = _org(tmp_path, 1, "Ville de Namur", "commune")
    path = tmp_path / "genesis.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--out", str(path)).exit_code == 0
    added = _node("genesis", "add", str(path), str(org.member_file))
    assert added.exit_code == 2 and "has not signed it" in added.output
    # An account signature by another key than the one named is refused too.
    signed = membership.read(org.member_file)
    with pytest.raises(MemberError, match="not this key"):
        signed.signed_by_account(Signer(digest(b"someone else")))
    doc = membership.to_json(signed)
    other = Signer(digest(b"someone else"))
    forged = other.sign(membership.Domain.MEMBERSHIP, CHAIN, signed.member.statement())
    doc["signatures"] = {"node": signed.node_signature.hex(), "account": forged.hex()}
    with pytest.raises(MemberError, match="account key's signature does not match"):
        membership.from_json(doc)


def test_a_duplicate_member_is_refused(genesis_file: Path, orgs: list[Org], tmp_path: Path) -> None:
    again = _node("genesis", "add", str(genesis_file), str(orgs[1].member_file))
    assert again.exit_code == 2 and "already holds a validator with this node key" in again.output
    # Another home with the same name, or a second bank, or a zone already taken.
    for n, name, role, message in [
        (5, "Ville de Namur", "commune", "with this name"),
        (6, "Autre Banque", "bank", "already has a bank"),
    ]:
        other = _org(tmp_path, n, name, role)
        _sign_account(other)
        refused = _node("genesis", "add", str(genesis_file), str(other.member_file))
        assert refused.exit_code == 2 and message in refused.output, refused.output
    elsewhere = tmp_path / "elsewhere.toml"
    assert (
        _node("genesis", "new", "--chain-id", "other-chain", "--out", str(elsewhere)).exit_code == 0
    )
    refused = _node("genesis", "add", str(elsewhere), str(orgs[1].member_file))
    assert refused.exit_code == 2 and "signed for chain" in refused.output
    other = _org(tmp_path / "other", 1, "Ville de Dinant", "commune")  # Namur's address
    _sign_account(other)
    refused = _node("genesis", "add", str(genesis_file), str(other.member_file))
    assert refused.exit_code == 2, refused.output  # same p2p address as Namur
    assert "with this p2p address" in refused.output


def test_check_names_what_differs(genesis_file: Path, orgs: list[Org]) -> None:
    text = genesis_file.read_text(encoding="utf-8")
    edited = text.replace('"127.0.0.3:26602"', '"127.0.0.9:26602"').replace("Z2-1", "Z2-9")
    genesis_file.write_text(edited, encoding="utf-8")
    namur = _node("genesis", "check", str(genesis_file), "--member", str(orgs[1].member_file))
    assert namur.exit_code == 1
    assert "validator p2p: '127.0.0.9:26602' in the genesis, '127.0.0.3:26602' signed" in (
        namur.output
    )
    mons = _node("genesis", "check", str(genesis_file), "--member", str(orgs[2].member_file))
    assert mons.exit_code == 1 and "issuer zones: 'Z2-9' in the genesis, 'Z2-1'" in mons.output
    bank = _node("genesis", "check", str(genesis_file), "--member", str(orgs[0].member_file))
    assert bank.exit_code == 0, bank.output


def test_an_auditor_is_added_once_and_every_organisation_reviews_it(
    genesis_file: Path, orgs: list[Org]
) -> None:
    key = Signer(digest(b"cour des comptes")).public_key.hex()
    added = _node("genesis", "add-auditor", str(genesis_file), "--name", "Cour des comptes",
                  "--account-key", key)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert parse(genesis_file.read_text(encoding="utf-8")).auditors[0].public_key.hex() == key
    again = _node("genesis", "add-auditor", str(genesis_file), "--name", "Cour des comptes",
                  "--account-key", "ef" * 32)  # fmt: skip
    assert again.exit_code == 2 and "already holds an auditor named" in again.output
    bank_key = orgs[0].account.public_key.hex()
    taken = _node("genesis", "add-auditor", str(genesis_file), "--name", "Autre",
                  "--account-key", bank_key)  # fmt: skip
    assert taken.exit_code == 2 and "need distinct keys" in taken.output
    checked = _node("genesis", "check", str(genesis_file), "--member", str(orgs[1].member_file))
    assert checked.exit_code == 0, checked.output
    assert f"auditor 'Cour des comptes' {key}" in checked.output
    assert "chain relance-test-ceremony, starting 2027-01-04T09:00:00Z" in checked.output
    assert "validator 'Ville de Mons' (commune, power 1)" in checked.output


def test_hash_and_check_refuse_an_incomplete_genesis(tmp_path: Path, orgs: list[Org]) -> None:
    path = tmp_path / "genesis.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--out", str(path)).exit_code == 0
    assert _node("genesis", "add", str(path), str(orgs[1].member_file)).exit_code == 0
    hashed = _node("genesis", "hash", str(path))
    assert hashed.exit_code == 2 and "bank is missing" in hashed.output
    with pytest.raises(GenesisError, match="bank is missing"):
        parse(path.read_text(encoding="utf-8"))


def test_install_checks_the_home_and_resets_its_empty_store(
    tmp_path: Path, genesis_file: Path, orgs: list[Org]
) -> None:
    home = orgs[2].home
    without = tmp_path / "without-mons.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--out", str(without)).exit_code == 0
    members = [str(o.member_file) for o in orgs[:2]]
    assert _node("genesis", "add", str(without), *members).exit_code == 0
    assert (home / "demo-keys.json").exists()  # init's placeholder chain
    refused = _node("genesis", "install", "--home", str(home), str(without))
    assert refused.exit_code == 2 and "no validator has the node key" in refused.output
    done = _node("genesis", "install", "--home", str(home), str(genesis_file))
    assert done.exit_code == 0, done.output
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    assert read_home(home).genesis == genesis
    BlockStore.open(home / config.DATA_DIR, genesis.genesis_hash, create=False).close()
    assert not (home / "demo-keys.json").exists()  # the placeholder chain's keys


def test_a_node_refuses_to_start_with_a_genesis_without_it(
    tmp_path: Path, genesis_file: Path, orgs: list[Org], caplog: pytest.LogCaptureFixture
) -> None:
    home = orgs[2].home
    assert _node("genesis", "install", "--home", str(home), str(genesis_file)).exit_code == 0
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    moved = replace(
        genesis,
        validators=tuple(
            replace(v, p2p="127.0.0.4:9999") if v.name == "Ville de Mons" else v
            for v in genesis.validators
        ),
    )
    (home / config.GENESIS_FILE).write_text(render(moved), encoding="utf-8")
    assert run(home) == 2
    assert "does not hold this node as it signed" in caplog.text
    assert "validator p2p: '127.0.0.4:9999' in the genesis, '127.0.0.4:26604' signed" in (
        caplog.text
    )
    h = read_home(home)
    with pytest.raises(MemberError, match="no validator has the node key"):
        others = replace(genesis, validators=genesis.validators[:2])
        start_settings(home, h.settings, others, h.node_key.public_key)


def test_peers_come_from_the_genesis_a_peers_file_or_the_config(
    genesis_file: Path, orgs: list[Org]
) -> None:
    home = orgs[0].home
    assert _node("genesis", "install", "--home", str(home), str(genesis_file)).exit_code == 0
    h = read_home(home)
    assert h.settings.peers == ()
    peers = start_settings(home, h.settings, h.genesis, h.node_key.public_key).peers
    assert [(p.host, p.port) for p in peers] == [("127.0.0.3", 26602), ("127.0.0.4", 26604)]
    assert [p.public_key for p in peers] == [v.public_key for v in h.genesis.validators[1:]]
    key = "cd" * 32
    (home / membership.PEERS_FILE).write_text(
        f'peers = [{{ public_key = "{key}", host = "127.0.0.7", port = 26610 }}]\n',
        encoding="utf-8",
    )
    from_file = start_settings(home, h.settings, h.genesis, h.node_key.public_key).peers
    assert [(p.public_key.hex(), p.host, p.port) for p in from_file] == [(key, "127.0.0.7", 26610)]
    override = replace(h.settings, peers=(config.PeerAddress(peers[0].public_key, "10.0.0.1", 1),))
    kept = start_settings(home, override, h.genesis, h.node_key.public_key)
    assert kept.peers == override.peers
    (home / membership.PEERS_FILE).write_text("peers = 3\n", encoding="utf-8")
    with pytest.raises(MemberError, match=r"peers\.toml"):
        start_settings(home, h.settings, h.genesis, h.node_key.public_key)


def test_validator_addresses_are_hashed_only_when_given(genesis_file: Path) -> None:
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    bare = replace(
        genesis, validators=tuple(replace(v, p2p="", api="") for v in genesis.validators)
    )
    assert all(len(v.entry()) == 4 for v in bare.validators)  # as before this change
    assert parse(render(bare)) == bare and "p2p" not in render(bare)
    assert bare.genesis_hash != genesis.genesis_hash
    assert parse(render(genesis)) == genesis
    first = {"p2p": 'p2p = "127.0.0.2:26600"', "api": 'api = "http://127.0.0.2:26601"'}
    for bad in ('p2p = "h:0"', 'p2p = "a b:1"', 'api = "http://x/\\"y"', 'api = "ftp://x"'):
        text = render(genesis).replace(first[bad[:3]], bad, 1)
        with pytest.raises(GenesisError, match=r"validators\[0\]\.(p2p|api)"):
            parse_draft(text)


def test_the_wallet_signs_a_member_file_with_the_account_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _node("init", "--home", str(home)).exit_code == 0
    env = {"RELANCE_PASSPHRASE": "correct horse", "RELANCE_KEYSTORE": str(tmp_path / "keys")}
    runner = CliRunner()
    made = runner.invoke(wallet_main, ["key", "new", "bank", "--no-phrase", "--json"], env=env)
    assert made.exit_code == 0, made.output
    key_file = tmp_path / "keys" / "bank.key"
    out = tmp_path / "bank.json"
    done = _node("genesis", "member", "--home", str(home), "--chain-id", CHAIN, "--name",
                 "Banque", "--role", "bank", "--p2p", "127.0.0.2:26600", "--api",
                 "https://relance.banque.example", "--account-key", str(key_file),
                 "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (
        runner.invoke(wallet_main, ["key", "new", "other", "--no-phrase"], env=env).exit_code == 0
    )
    wrong = runner.invoke(wallet_main, ["key", "sign-member", "other", str(out), "--yes"], env=env)
    assert wrong.exit_code == 2 and "not 'other'" in wrong.output
    declined = runner.invoke(
        wallet_main, ["key", "sign-member", "bank", str(out)], env=env, input="n\n"
    )
    assert declined.exit_code == 7 and "Banque" in declined.output
    assert membership.read(out).account_signature is None
    signed = runner.invoke(wallet_main, ["key", "sign-member", "bank", str(out), "--yes"], env=env)
    assert signed.exit_code == 0, signed.output
    assert membership.read(out).account_signature is not None
    path = tmp_path / "genesis.toml"
    assert _node("genesis", "new", "--chain-id", CHAIN, "--out", str(path)).exit_code == 0
    added = _node("genesis", "add", str(path), str(out))
    assert added.exit_code == 0 and "1 validators" in added.output, added.output


# --- four organisations on four loopback hosts ----------------------------------------

ORGS = (  # name, role, territory, zone, wallet key
    ("Banque de la Région", "bank", "", "", "bank"),
    ("Ville de Namur", "commune", "Namur", "NAM-CENTRE", "namur"),
    ("Ville de Liège", "commune", "Liège", "LGE-CENTRE", "liege"),
    ("Ville de Mons", "commune", "Mons", "MON-CENTRE", "mons"),
)
BIN = Path(sys.executable).parent  # relance-node and relance-wallet of this environment


def _cli(tool: str, *args: str, env: dict[str, str] | None = None, answer: str = "") -> str:
    """One command as the operator types it (``answer`` typed at its prompt); its output
    (the test fails on an error)."""
    done = subprocess.run(
        [str(BIN / tool), *args],
        capture_output=True,
        input=answer,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)  # the whole story, five processes on a loaded machine: ~7 minutes
def test_four_organisations_on_four_hosts_start_a_network_from_the_ceremony(
    tmp_path: Path,
) -> None:
    chain, base = "relance-wallonie", free_base_port(10)
    nodes, wallets = [], []
    for n, (name, role, territory, zone, key) in enumerate(ORGS):
        org = tmp_path / key  # this organisation's host
        host, p2p, api = f"127.0.0.{n + 2}", base + 2 * n, base + 2 * n + 1
        home, member = org / "relance", org / "member.json"
        wallet = {"RELANCE_KEYSTORE": str(org / "keys"), "RELANCE_PASSPHRASE": f"pass {key}"}
        _cli("relance-node", "init", "--home", str(home), "--moniker", name, "--host", host,
             "--p2p-port", str(p2p), "--api-port", str(api))  # fmt: skip
        _cli("relance-wallet", "key", "new", key, "--no-phrase", env=wallet)
        issuer = [] if role == "bank" else ["--territory", territory, "--zone", zone]
        _cli("relance-node", "genesis", "member", "--home", str(home), "--chain-id", chain,
             "--name", name, "--role", role, "--p2p", f"{host}:{p2p}",
             "--api", f"http://{host}:{api}", "--account-key", str(org / "keys" / f"{key}.key"),
             *issuer, "--out", str(member))  # fmt: skip
        _cli("relance-wallet", "key", "sign-member", key, str(member), "--yes", env=wallet)
        nodes.append(DevnetNode(name, home, p2p, api))
        wallets.append({**wallet, "RELANCE_NODE": f"http://{host}:{api}"})

    # The coordinator gathers the four files; each organisation checks and hashes.
    genesis_file = tmp_path / "coordinator" / "genesis.toml"
    genesis_file.parent.mkdir()
    _cli("relance-node", "genesis", "new", "--chain-id", chain, "--out", str(genesis_file))
    members = [str(tmp_path / org[4] / "member.json") for org in ORGS]
    _cli("relance-node", "genesis", "add", str(genesis_file), *members)
    keys = tmp_path / "cour" / "keys"  # the auditor's wallet, on its own host
    auditor = {"RELANCE_KEYSTORE": str(keys), "RELANCE_PASSPHRASE": "pass cour"}
    _cli("relance-wallet", "key", "new", "cour", "--no-phrase", env=auditor)
    cour = _cli("relance-wallet", "key", "show", "cour", env=auditor).strip()  # sent over
    _cli("relance-node", "genesis", "add-auditor", str(genesis_file), "--name",
         "Cour des comptes", "--account-key", cour)  # fmt: skip
    hashes = set()
    for node, member in zip(nodes, members, strict=True):
        checked = _cli("relance-node", "genesis", "check", str(genesis_file), "--member", member)
        assert f"auditor 'Cour des comptes' {cour}" in checked
        hashes.add(_cli("relance-node", "genesis", "hash", str(genesis_file)).strip())
        _cli("relance-node", "genesis", "install", "--home", str(node.home), str(genesis_file))
    assert len(hashes) == 1
    published = hashes.pop()

    # A fifth organisation, not in the genesis: its node refuses to start with it.
    outsider, p2p, api = tmp_path / "dinant" / "relance", str(base + 8), str(base + 9)
    _cli("relance-node", "init", "--home", str(outsider), "--moniker", "Ville de Dinant",
         "--host", "127.0.0.6", "--p2p-port", p2p, "--api-port", api)  # fmt: skip
    _cli("relance-node", "genesis", "member", "--home", str(outsider), "--chain-id", chain,
         "--name", "Ville de Dinant", "--role", "commune", "--p2p", f"127.0.0.6:{p2p}",
         "--api", f"http://127.0.0.6:{api}", "--out", str(outsider.parent / "m.json"))  # fmt: skip
    shutil.copy(genesis_file, outsider / config.GENESIS_FILE)  # by hand, past 'install'
    refused = subprocess.run(
        [str(BIN / "relance-node"), "start", "--home", str(outsider)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "does not hold this node as it signed" in refused.stderr
    assert "no validator has the node key" in refused.stderr

    supervisor = Supervisor(nodes)  # 'relance-node start --home …' on each host
    rotated = tmp_path / "mons" / "relance-next"  # Mons's node with a new node key
    homes = [n.home for n in nodes] + [rotated]
    upgraded = NodeProcesses(homes, [UPGRADED] * len(homes))  # the new release
    supervisor.start()
    try:
        urls = [w["RELANCE_NODE"] for w in wallets]
        for url in urls:  # peers come from the genesis: config.toml lists none
            status = eventually(
                lambda u=url: _status_at(u, height=3, peers=3), 90, f"blocks and peers at {url}"
            )
            assert status["genesis_hash"] == published and status["chain_id"] == chain
        hashes_at_2 = {get_json(f"{url}/v1/blocks/2")["hash"] for url in urls}
        assert len(hashes_at_2) == 1, hashes_at_2
        # The account keys of the ceremony sign on this chain: a campaign, its funding.
        _cli("relance-wallet", "issuer", "create-campaign", "--key", "namur", "NAM-2027",
             "--name", "Chèques relance", "--zone", "NAM-CENTRE", "--category", "47",
             "--until", "+90d", "--max-per-holder", "150", "--yes", env=wallets[1])  # fmt: skip
        _cli("relance-wallet", "bank", "fund", "--key", "bank", "NAM-2027", "25000",
             "--reference", "DEP-0001", "--yes", env=wallets[0])  # fmt: skip
        assert supervisor.exited() == []
        _merchants_allocation_payments(tmp_path, wallets)
        _a_node_restarts_and_catches_up(supervisor, urls, 2)
        _a_backup_restored_after_the_chain_moved_on(supervisor, urls, 3, tmp_path)
        _an_upgrade_by_governance(supervisor, upgraded, urls, tmp_path)
        rotation = Rotation(genesis_file, rotated, base + 8, base + 9)  # Dinant's unused ports
        _a_validator_s_node_key_is_rotated(supervisor.nodes, upgraded, urls, rotation)
        assert upgraded.crashed() == []
        for home in homes:  # nobody ever saw two statements of one slot from anyone
            assert "evidence against" not in (home / "node.log").read_text(encoding="utf-8")
    finally:
        supervisor.stop()
        upgraded.stop_all()


def _status_at(url: str, height: int, peers: int) -> dict[str, object] | None:
    status = get_json(f"{url}/v1/status")
    reached = int(str(status["height"])) >= height and int(str(status["peers"])) >= peers
    return status if reached else None


# --- the operator's story goes on: docs/operating.md's commands, as typed ---------------

NEXT_PROTOCOL = "tx9.block9"  # what the release under test (tools.faults.node) also knows
NEXT_RELEASE = "0.9.0"
UPGRADED = {ENV_NEXT_PROTOCOL: NEXT_PROTOCOL}
UPGRADE_IN_BLOCKS = 60  # time for three commands on a loaded machine (a block: ~0.5 s)
RESTORED = re.compile(r"restored validator: fence lifted, signing at height (\d+)")


def _height_at(url: str) -> int:
    return int(str(get_json(f"{url}/v1/status")["height"]))


def _reach(url: str, height: int, what: str) -> None:
    eventually(lambda: _height_at(url) >= height or None, 120, what)


def _merchants_allocation_payments(tmp: Path, wallets: list[dict[str, str]]) -> None:
    """Namur registers a shop, allocates a citizen's pot; the citizen pays twice."""
    namur = wallets[1]
    shop = {
        **namur,
        "RELANCE_KEYSTORE": str(tmp / "shop" / "keys"),
        "RELANCE_PASSPHRASE": "pass shop",
    }
    citizen = {
        **namur,
        "RELANCE_KEYSTORE": str(tmp / "zoe" / "keys"),
        "RELANCE_PASSPHRASE": "pass zoe",
    }
    _cli("relance-wallet", "key", "new", "boulangerie", "--no-phrase", env=shop)
    _cli("relance-wallet", "key", "new", "zoe", "--no-phrase", env=citizen)
    shop_key = _cli("relance-wallet", "key", "show", "boulangerie", env=shop).strip()
    zoe_key = _cli("relance-wallet", "key", "show", "zoe", env=citizen).strip()
    merchants = tmp / "namur" / "merchants.csv"
    merchants.write_text(
        "public_key,name,category,zone,payout_ref,auto_redeem\n"
        f"{shop_key},Boulangerie de l'Église,47.11,NAM-CENTRE,BE71 0961 2345 6769,no\n",
        encoding="utf-8",
    )
    _cli("relance-wallet", "issuer", "register-merchants", "--key", "namur", str(merchants),
         "--yes", env=namur)  # fmt: skip
    households = tmp / "namur" / "households.csv"
    households.write_text(f"amount,zone,channel,holder\n100,NAM-CENTRE,app,{zoe_key}\n")
    _cli("relance-wallet", "issuer", "allocate", "--key", "namur", "NAM-2027", str(households),
         "--yes", env=namur)  # fmt: skip
    for amount in ("12,50", "30"):
        _cli("relance-wallet", "holder", "pay", "--key", "zoe", "--campaign", "NAM-2027",
             shop_key, amount, "--yes", env=citizen)  # fmt: skip
    balances = get_json(f"{namur['RELANCE_NODE']}/v1/accounts/{shop_key}")["balances"]
    assert isinstance(balances, list)
    assert [b["cents"] for b in balances] == [4_250]


def _a_node_restarts_and_catches_up(supervisor: Supervisor, urls: list[str], index: int) -> None:
    """``systemctl restart relance-node`` on one host: the others go on, it catches up."""
    supervisor.stop_one(index)
    others = [u for i, u in enumerate(urls) if i != index]
    top = max(_height_at(u) for u in others)
    _reach(others[0], top + 3, "three of four go on")
    supervisor.restart_one(index)
    _reach(urls[index], max(_height_at(u) for u in others), "the restarted node caught up")


def _a_backup_restored_after_the_chain_moved_on(
    supervisor: Supervisor, urls: list[str], index: int, tmp: Path
) -> None:
    """A backup while the node runs; the chain moves on; restored, the node catches up and
    signs only past what its lost self had signed."""
    home = supervisor.nodes[index].home
    archive = tmp / "mons" / "backup.tar"
    made = _cli("relance-node", "backup", "--home", str(home), "--out", str(archive))
    at = int(re.search(r"at height (\d+)", made).group(1))  # type: ignore[union-attr]
    _reach(urls[0], at + 5, "the chain moves on after the backup")
    supervisor.stop_one(index)  # systemctl stop relance-node
    lost = SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes())
    (home / config.SIGN_STATE_FILE).unlink()  # the worst case: its signer state is lost too
    _cli("relance-node", "restore", "--home", str(home), "--replace", str(archive))
    assert SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes()).height < lost.height
    supervisor.restart_one(index)  # systemctl start relance-node
    log = home / "node.log"
    lifted = eventually(lambda: RESTORED.search(log.read_text(encoding="utf-8")), 180, "fence")
    assert int(lifted.group(1)) > lost.height  # nothing its lost self may have signed
    _reach(urls[index], _height_at(urls[0]), "the restored node caught up")


def _an_upgrade_by_governance(
    supervisor: Supervisor, upgraded: NodeProcesses, urls: list[str], tmp: Path
) -> None:
    """Each organisation installs the release that knows the protocol (one host at a time,
    the chain going on); governance schedules it; the chain passes the height."""
    for index in range(len(urls)):
        supervisor.stop_one(index)
        upgraded.start(index)
        others = [u for i, u in enumerate(urls) if i != index]
        _reach(urls[index], max(_height_at(u) for u in others), "upgraded node caught up")
    homes = [str(node.home) for node in supervisor.nodes]
    proposal = tmp / "bank" / "upgrade.json"
    _cli("relance-node", "governance", "propose-upgrade", "--home", homes[0], "--protocol",
         NEXT_PROTOCOL, "--software", NEXT_RELEASE, "--in-blocks", str(UPGRADE_IN_BLOCKS),
         "--out", str(proposal))  # fmt: skip
    for home in homes[1:3]:  # passed from host to host
        _cli("relance-node", "governance", "approve", "--home", home, str(proposal), answer="y\n")
    _cli("relance-node", "governance", "submit", "--home", homes[0], str(proposal))
    said = get_json(f"{urls[3]}/v1/status")["upgrade"]
    assert isinstance(said, dict) and said["protocol"] == NEXT_PROTOCOL and said["known"] is True
    height = int(said["height"])
    for url in urls:
        _reach(url, height + 2, "past the upgrade's height")
    assert len({get_json(f"{url}/v1/blocks/{height}")["hash"] for url in urls}) == 1


@dataclass(frozen=True)
class Rotation:
    genesis: Path
    home: Path  # the new home on Mons's host
    p2p: int
    api: int


def _restart_with(upgraded: NodeProcesses, urls: list[str], index: int) -> None:
    """One host's node restarted (after a config change); until it has caught up."""
    upgraded.terminate(index)
    upgraded.restart(index)
    others = [u for i, u in enumerate(urls) if i != index]
    _reach(urls[index], max(_height_at(u) for u in others), "restarted node caught up")


def _validator_keys(url: str) -> list[str]:
    validators = get_json(f"{url}/v1/status")["validators"]
    assert isinstance(validators, list)
    return [str(v["public_key"]) for v in validators]


def _a_validator_s_node_key_is_rotated(
    nodes: list[DevnetNode], upgraded: NodeProcesses, urls: list[str], rot: Rotation
) -> None:
    """Mons makes a new home (a new node key) on its host; the others accept it as a
    peer; governance swaps the old key for the new; the old node stops and the chain
    needs the new one's votes."""
    made = _cli("relance-node", "init", "--home", str(rot.home), "--genesis", str(rot.genesis),
                "--moniker", "Ville de Mons", "--host", "127.0.0.5", "--p2p-port", str(rot.p2p),
                "--api-port", str(rot.api))  # fmt: skip
    new_key = re.search(r"node key:\s+([0-9a-f]{64})", made).group(1)  # type: ignore[union-attr]
    for index in range(3):  # each other organisation lets the new key connect
        path = nodes[index].home / config.CONFIG_FILE
        text = path.read_text(encoding="utf-8")
        assert text.count("accept_from = []") == 1
        path.write_text(text.replace("accept_from = []", f'accept_from = ["{new_key}"]'))
        _restart_with(upgraded, urls, index)
    new_url = f"http://127.0.0.5:{rot.api}"
    upgraded.start(4)
    _reach(new_url, _height_at(urls[0]), "the new home synced")

    old_keys = [read_home(node.home).node_key.public_key.hex() for node in nodes]
    assert sorted(_validator_keys(urls[0])) == sorted(old_keys)
    entries = [f"{node.name},{org[1]},{key}" for node, org, key in
               zip(nodes, ORGS, old_keys, strict=True)]  # fmt: skip
    entries[3] = f"Ville de Mons,commune,{new_key}"
    homes = [str(node.home) for node in nodes]
    proposal = rot.home.parent / "rotate.json"
    members = [x for entry in entries for x in ("--validator", entry)]
    _cli("relance-node", "governance", "propose-validators", "--home", homes[3], "--in-blocks",
         str(UPGRADE_IN_BLOCKS), *members, "--out", str(proposal))  # fmt: skip
    for home in homes[:2]:
        _cli("relance-node", "governance", "approve", "--home", home, str(proposal), answer="y\n")
    _cli("relance-node", "governance", "submit", "--home", homes[3], str(proposal))
    effective = int(json.loads(proposal.read_text(encoding="utf-8"))["effective_height"])
    _reach(urls[0], effective + 2, "the new validator set")
    assert sorted(_validator_keys(urls[0])) == sorted([*old_keys[:3], new_key])

    upgraded.terminate(3)  # the old home, for good
    upgraded.terminate(2)  # and Liège for a while: three of four need the new key's votes
    base = _height_at(urls[0])
    _reach(urls[0], base + 3, "blocks with the new key's votes")
    upgraded.restart(2)
    _reach(urls[2], _height_at(urls[0]), "Liège caught up")
    assert upgraded.crashed() == []
