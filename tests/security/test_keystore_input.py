"""Issue 15, finding 9: a hostile key file is a keystore error (exit code 4), never a
traceback; and every folder the wallet creates on the way to its keys is 0700."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from node.protocol.crypto import Signer
from tests.wallet.support import PASSPHRASE, Cli, cli_env
from wallets import keystore as ks
from wallets.exits import Exit, WalletError

HOSTILE_KEY_FILES = {
    "nested-arrays": b"[" * 30_000 + b"]" * 30_000,  # under the key file cap: parsed
    "nested-objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "huge-integer": b'{"format": "relance-key", "version": ' + b"9" * 5_000 + b"}",
    "huge-memlimit": (
        b'{"format": "relance-key", "version": 1, "public_key": "00", "sealed": '
        b'{"format": "relance-sealed", "memlimit": 1' + b"0" * 5_000 + b"}}"
    ),
    "nan": b'{"format": "relance-key", "version": NaN}',
    "not-utf8": b'{"format": "\xff\xfe"}',
}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("content", HOSTILE_KEY_FILES.values(), ids=HOSTILE_KEY_FILES.keys())
def test_a_hostile_key_file_is_a_keystore_error(tmp_path: Path, content: bytes) -> None:
    store = ks.Keystore(tmp_path / "keys")
    store.folder.mkdir()
    store.path("mallory").write_bytes(content)
    for read in (store.info, lambda name: store.open(name, PASSPHRASE)):
        with pytest.raises(WalletError) as refused:
            read("mallory")
        assert refused.value.code == Exit.KEYSTORE
        assert "damaged" in refused.value.message
    assert store.list() == []  # listed keys skip it, quietly


def test_a_hostile_sealed_file_is_a_keystore_error(tmp_path: Path) -> None:
    path = tmp_path / "campaign.book"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(WalletError) as refused:
        ks.read_sealed(path, PASSPHRASE, "voucher book")
    assert refused.value.code == Exit.KEYSTORE


def test_a_key_file_that_is_a_folder_or_too_large_is_a_keystore_error(tmp_path: Path) -> None:
    store = ks.Keystore(tmp_path / "keys")
    store.path("folder").mkdir(parents=True)
    store.path("large").write_bytes(b" " * (ks.KEY_FILE_BYTES_MAX + 1) + b"{}")
    for name in ("folder", "large"):
        with pytest.raises(WalletError) as refused:
            store.info(name)
        assert refused.value.code == Exit.KEYSTORE


@pytest.mark.parametrize("name", ["nested-arrays", "huge-integer"])
def test_the_cli_answers_exit_code_4_and_one_line(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    cli = Cli(cli_env(home))
    cli.ok("key", "new", "alice")
    (home / "keys" / "alice.key").write_bytes(HOSTILE_KEY_FILES[name])
    for args in (("key", "show", "alice"), ("key", "show", "alice", "--phrase", "en")):
        result = cli(*args)
        assert result.exit_code == Exit.KEYSTORE, result.output
        assert result.stderr.startswith("error: key 'alice' is damaged")
        assert result.stderr.count("\n") == 1  # no traceback


def test_every_folder_the_keystore_creates_is_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: mkdir(parents=True) made 0755 parents
    try:
        home = tmp_path / "new" / "relance"
        store = ks.Keystore(home / "keys")
        store.add("alice", Signer.generate(), PASSPHRASE)
        ks.write_sealed(home / "vouchers" / "chain" / "NAM.book", b"{}", PASSPHRASE)
    finally:
        os.umask(previous)
    created = [
        tmp_path / "new",
        home,
        home / "keys",
        home / "vouchers",
        home / "vouchers" / "chain",
    ]
    assert {str(folder): oct(mode_of(folder)) for folder in created} == {
        str(folder): oct(0o700) for folder in created
    }
    assert mode_of(store.path("alice")) == 0o600
    assert json.loads(store.path("alice").read_text())["format"] == "relance-key"


def test_a_folder_that_already_exists_is_left_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)
    store = ks.Keystore(shared / "keys")
    store.add("alice", Signer.generate(), PASSPHRASE)
    assert mode_of(shared) == 0o750  # not ours: unchanged
    assert mode_of(store.folder) == 0o700
