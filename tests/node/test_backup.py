"""Backups and restore of a node home (issue 17), without processes: what goes in the
archive and what stays out, every member checked against the manifest on restore, the
newer signer state kept, and the restored validator's fence."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import plyvel
import pytest

from node.consensus.signer import GuardedSigner, SignRecord, SignRefused, SignStep
from node.consensus.types import VoteKind
from node.devnet.network import write_devnet
from node.protocol import limits
from node.protocol.crypto import Signer
from node.protocol.genesis import parse as parse_genesis
from node.run import backup, config
from node.run.backup import BackupError, Manifest, RestoreFence
from node.settlement.journal import open_journal
from tests.consensus.sim import MemoryRecordStore
from tools.faults.cluster import free_base_port


def a_home(tmp_path: Path) -> Path:
    (node,) = write_devnet(tmp_path / "net", 1, free_base_port(2, 1), time.time_ns() // 1_000_000)
    return node.home


def records(data: Path) -> dict[bytes, bytes]:
    db = plyvel.DB(str(data))
    try:
        return dict(db.iterator())
    finally:
        db.close()


def members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_a_backup_restores_the_store_and_home_without_keys(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    (home / config.SIGN_STATE_FILE).write_bytes(
        SignRecord(5, 0, SignStep.PRECOMMIT, bytes(32)).encode()
    )
    (home / "settlement.toml").write_text('bank_key_file = "bank_key"\n', encoding="utf-8")
    (home / "bank_key").write_text("00" * 32 + "\n", encoding="ascii")
    journal = open_journal(home / "settlement")
    journal.close()
    (home / "tls").mkdir()
    (home / "tls" / "api.key").write_text("secret", encoding="ascii")
    archive = tmp_path / "home.tar"
    assert backup.backup(home, archive, with_key=False) == 0
    assert archive.stat().st_mode & 0o077 == 0  # the owner's only
    names = members(archive)
    assert names[:2] == ["manifest.json", "store.records"]
    assert "home/sign_state" in names and "home/settlement/bank.sqlite" in names
    assert "home/node_key" not in names and "home/bank_key" not in names
    assert not any(n.startswith(("home/tls", "home/data", "home/index")) for n in names)

    target = tmp_path / "restored"
    (target).mkdir()
    (target / config.NODE_KEY_FILE).write_text((home / config.NODE_KEY_FILE).read_text())
    manifest = backup.restore(archive, target, replace=False)
    assert manifest.height == 0
    assert records(target / config.DATA_DIR) == records(home / config.DATA_DIR)
    for name in (config.CONFIG_FILE, config.GENESIS_FILE, config.SIGN_STATE_FILE):
        assert (target / name).read_bytes() == (home / name).read_bytes()
    assert backup.restored_height(target) == 0  # fenced until the network is past it

    with_key = tmp_path / "with-key.tar"
    backup.backup(home, with_key, with_key=True)
    assert {"home/node_key", "home/bank_key"} <= set(members(with_key))


def test_restore_needs_a_node_key_and_refuses_to_overwrite_a_store(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    archive = tmp_path / "home.tar"
    backup.backup(home, archive, with_key=False)
    with pytest.raises(BackupError, match="no node key"):
        backup.restore(archive, tmp_path / "new", replace=False)
    with pytest.raises(BackupError, match="--replace"):
        backup.restore(archive, home, replace=False)
    backup.restore(archive, home, replace=True)  # the old store is kept aside
    assert list(home.glob("data.replaced-*"))


def test_restore_keeps_the_newer_signer_state_of_the_home(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    old = SignRecord(5, 0, SignStep.PRECOMMIT, bytes(32))
    (home / config.SIGN_STATE_FILE).write_bytes(old.encode())
    archive = tmp_path / "home.tar"
    backup.backup(home, archive, with_key=True)
    newer = SignRecord(9, 1, SignStep.PREVOTE, bytes(32))
    (home / config.SIGN_STATE_FILE).write_bytes(newer.encode())
    backup.restore(archive, home, replace=True)
    assert SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes()) == newer


def rewrite(archive: Path, out: Path, change: dict[str, bytes | None]) -> None:
    """A copy of ``archive`` with members replaced (bytes), removed (None) or added."""
    with tarfile.open(archive) as source, tarfile.open(out, "w") as target:
        seen = set()
        for member in source.getmembers():
            seen.add(member.name)
            data = change.get(member.name, _read(source, member))
            if data is None:
                continue
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
        for name, data in change.items():
            if name not in seen and data is not None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    file = tar.extractfile(member)
    assert file is not None
    return file.read()


def test_a_damaged_or_padded_archive_is_refused(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    archive = tmp_path / "home.tar"
    backup.backup(home, archive, with_key=True)
    config_text = (home / config.CONFIG_FILE).read_bytes()
    cases = {
        "does not match its hash": {"home/config.toml": config_text + b"# edited\n"},
        "unexpected member": {"home/../../etc/cron.d/x": b"boom"},
        "members missing": {"home/config.toml": None},
    }
    for problem, change in cases.items():
        bad = tmp_path / f"bad-{len(problem)}.tar"
        rewrite(archive, bad, change)
        target = tmp_path / f"target-{len(problem)}"
        with pytest.raises(BackupError, match=problem):
            backup.restore(bad, target, replace=False)
        assert not (target / config.DATA_DIR).exists()  # nothing half-restored
    with tarfile.open(archive) as tar:
        other = json.loads(_read(tar, tar.getmember("manifest.json")))
    other["genesis_hash"] = "00" * 32
    bad = tmp_path / "other-chain.tar"
    rewrite(archive, bad, {"manifest.json": json.dumps(other).encode()})
    with pytest.raises(BackupError, match="does not match its manifest"):
        backup.restore(bad, tmp_path / "other", replace=False)
    with pytest.raises(BackupError, match="unreadable manifest"):
        Manifest.decode(b"{}")
    # Even listed in the manifest, a member never lands in the store or outside the home.
    for name in ("home/data/CURRENT", "home/../x", "home/.restore-1/x", "data/CURRENT", "x"):
        assert not backup.allowed_member(name), name
    assert backup.allowed_member("home/settlement/outbox/file.xml")


def test_the_restored_validator_signs_only_past_the_network(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / backup.RESTORED_FILE).write_text('{"height": 10}', encoding="ascii")
    genesis_chain = "relance-test"
    signer = GuardedSigner(Signer.generate(), genesis_chain, MemoryRecordStore())
    start_ms, drift_ms = 1_000_000, 10_000
    fence = RestoreFence(signer, home, 10, start_ms, drift_ms)
    # Blocks synced from before the start (or within the drift) do not lift it.
    for height in range(11, 40):
        fence.on_commit(height, start_ms + drift_ms)
        with pytest.raises(SignRefused, match="restored from a backup at height 10"):
            fence.sign_vote(VoteKind.PREVOTE, height + 1, 0, None)
    # The first block the network made after the start: margin heights more, then it signs.
    fence.on_commit(40, start_ms + drift_ms + 1)
    for height in range(40, 41 + limits.RESTORE_MARGIN_HEIGHTS):
        with pytest.raises(SignRefused):
            fence.sign_proposal(height, 0, bytes(32), -1)
    allowed = 41 + limits.RESTORE_MARGIN_HEIGHTS
    vote = fence.sign_vote(VoteKind.PREVOTE, allowed, 0, None)
    assert vote.height == allowed and fence.lifted
    assert backup.restored_height(home) is None  # a restart after this signs as usual


def test_the_genesis_of_the_home_must_be_the_archive_s(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    archive = tmp_path / "home.tar"
    backup.backup(home, archive, with_key=True)
    other = a_home(tmp_path / "other")
    assert (
        parse_genesis((other / "genesis.toml").read_text()).genesis_hash
        != parse_genesis((home / "genesis.toml").read_text()).genesis_hash
    )
    with pytest.raises(BackupError, match="another chain"):
        backup.restore(archive, other, replace=True)
