"""Back a running validator up, let the chain run, lose its home, restore the older backup
and restart it (issue 17): it catches up, signs nothing its old self may have signed (the
fence lifts only above the height its lost signer state had reached), no evidence is ever
detected or committed against it, and the chain keeps going with its votes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from node.consensus.signer import SignRecord
from node.devnet.network import DevnetNode, Supervisor
from node.ledger import records as r
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.store.blockstore import BlockStore
from tests.node.conftest import node_height
from tests.node.netutil import eventually

LIFTED = re.compile(r"restored validator: fence lifted, signing at height (\d+)")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.run.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_validator_restored_from_an_older_backup_never_signs_twice(
    devnet: tuple[list[DevnetNode], Supervisor], tmp_path: Path
) -> None:
    nodes, supervisor = devnet
    restored = nodes[3]
    home = restored.home
    key = bytes.fromhex((home / config.NODE_KEY_FILE).read_text().strip())
    eventually(lambda: all(node_height(n) >= 3 for n in nodes[:4]) or None, 90, "first blocks")

    nowhere = cli("backup", "--home", str(home), "--out", str(tmp_path / "no" / "x.tar"))
    assert nowhere.returncode == 2 and "is not a directory" in nowhere.stderr  # the node said
    archive = tmp_path / "node3.tar"
    made = cli("backup", "--home", str(home), "--out", str(archive), "--with-key")
    assert made.returncode == 0, made.stderr
    backup_height = int(re.search(r"at height (\d+)", made.stdout).group(1))  # type: ignore[union-attr]
    assert backup_height >= 3

    busy = cli("restore", "--home", str(home), "--replace", str(archive))
    assert busy.returncode == 2 and "is running: stop it first" in busy.stderr

    # The chain runs on with node3 voting; then node3's host is lost.
    eventually(lambda: node_height(nodes[0]) >= backup_height + 5 or None, 120, "chain runs")
    supervisor.stop_one(3)
    live = SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes())
    log_before = (home / "node.log").read_text(encoding="utf-8")
    shutil.rmtree(home)

    done = cli("restore", "--home", str(home), str(archive))
    assert done.returncode == 0, done.stderr
    old = SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes())
    assert old.height < live.height  # alone, this state would let it sign again there
    (home / "node.log").write_text(log_before, encoding="utf-8")

    supervisor.restart_one(3)
    lifted = eventually(
        lambda: LIFTED.search((home / "node.log").read_text(encoding="utf-8")), 180, "fence"
    )
    first_signed = int(lifted.group(1))
    assert first_signed > live.height  # nothing at or below what its lost self signed
    top = node_height(nodes[0])
    eventually(lambda: node_height(restored) >= top or None, 120, "node3 caught up")
    eventually(lambda: node_height(nodes[0]) >= first_signed + 6 or None, 120, "chain goes on")
    assert not supervisor.exited()
    supervisor.stop()

    genesis = parse_genesis((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    store = BlockStore.open(nodes[0].home / config.DATA_DIR, genesis.genesis_hash, create=False)
    try:
        evidence = r.evidence_key(key, 0, 0, 0)[: -(len(key) + 13)]  # the table's prefix
        assert not list(store.iter_prefix(evidence)), "evidence committed"
    finally:
        store.close()
    signed = SignRecord.decode((home / config.SIGN_STATE_FILE).read_bytes())
    assert signed.height >= first_signed, "node3 votes again after the fence"
    for node in nodes:  # no node ever saw two statements of one slot from anyone
        assert "evidence against" not in (node.home / "node.log").read_text(encoding="utf-8")
