"""The encrypted keystore: round trip, wrong passphrase, file mode, atomic writes,
recovery phrases in English and French; and the `key` commands."""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from pathlib import Path

import pytest

from node.protocol.crypto import Signer
from tests.wallet.support import PASSPHRASE, Cli, cli_env
from wallets import keystore as ks
from wallets.exits import Exit, WalletError


def test_a_key_round_trips_and_its_file_is_private(tmp_path: Path) -> None:
    store = ks.Keystore(tmp_path / "keys")
    signer = Signer(bytes(range(32)))
    info = store.add("alice", signer, PASSPHRASE)
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    document = json.loads(info.path.read_text())
    assert document["format"] == "relance-key"
    assert document["public_key"] == signer.public_key.hex()
    assert document["sealed"]["kdf"] == "argon2id13"
    assert signer.seed.hex() not in info.path.read_text()
    assert store.open("alice", PASSPHRASE).seed == signer.seed
    assert [k.name for k in store.list()] == ["alice"]


def test_a_wrong_passphrase_or_an_altered_file_is_refused(tmp_path: Path) -> None:
    store = ks.Keystore(tmp_path / "keys")
    info = store.add("alice", Signer.generate(), PASSPHRASE)
    with pytest.raises(WalletError) as wrong:
        store.open("alice", "not the passphrase")
    assert wrong.value.code == Exit.KEYSTORE
    assert "wrong passphrase" in wrong.value.message
    document = json.loads(info.path.read_text())
    ciphertext = bytearray(bytes.fromhex(document["sealed"]["ciphertext"]))
    ciphertext[0] ^= 1
    document["sealed"]["ciphertext"] = ciphertext.hex()
    info.path.write_text(json.dumps(document))
    with pytest.raises(WalletError) as altered:
        store.open("alice", PASSPHRASE)
    assert altered.value.code == Exit.KEYSTORE


def test_a_swapped_public_key_is_detected(tmp_path: Path) -> None:
    store = ks.Keystore(tmp_path / "keys")
    info = store.add("alice", Signer.generate(), PASSPHRASE)
    document = json.loads(info.path.read_text())
    document["public_key"] = Signer.generate().public_key.hex()
    info.path.write_text(json.dumps(document))
    with pytest.raises(WalletError, match="public key mismatch"):
        store.open("alice", PASSPHRASE)


def test_a_crash_during_a_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "book"
    ks.write_atomic(path, b"old contents")

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        ks.write_atomic(path, b"new contents")
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert sorted(p.name for p in path.parent.iterdir()) == ["book"]  # no temporary file left
    ks.write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("language", ["en", "fr"])
def test_recovery_phrases_round_trip(language: str) -> None:
    seed = Signer.generate().seed
    phrase = ks.to_phrase(seed, language)
    assert len(phrase.split()) == 24
    assert ks.from_phrase(phrase) == seed  # language detected
    assert ks.from_phrase(phrase, language) == seed
    typed = "  " + unicodedata.normalize("NFC", phrase).upper().replace(" ", "   ") + "\n"
    assert ks.from_phrase(typed) == seed  # composed accents, capitals, extra spaces


def test_a_misspelt_phrase_is_refused() -> None:
    words = ks.to_phrase(bytes(range(32)), "fr").split()
    assert words[3] != words[4]
    words[3], words[4] = words[4], words[3]
    with pytest.raises(WalletError) as refused:
        ks.from_phrase(" ".join(words))
    assert refused.value.code == Exit.USAGE


def test_key_commands(tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path / "home"))
    created = cli.json("key", "new", "alice", "--phrase-language", "fr")
    phrase = str(created["recovery_phrase"])
    public_key = created["public_key"]
    assert cli.ok("key", "show", "alice").stdout.strip() == public_key
    listed = cli.json("key", "list")
    assert listed["keys"] == [
        {"name": "alice", "public_key": public_key, "created": listed["keys"][0]["created"]}  # type: ignore[index]
    ]
    # Restore from the written phrase under another name and passphrase.
    restored = cli.json(
        "key", "import", "alice2", "--phrase", input=phrase + "\n",
        RELANCE_PASSPHRASE="another passphrase",
    )  # fmt: skip
    assert restored["public_key"] == public_key
    shown = cli.json(
        "key", "show", "alice2", "--phrase", "en", RELANCE_PASSPHRASE="another passphrase"
    )
    assert ks.from_phrase(str(shown["recovery_phrase"]), "en") == ks.from_phrase(phrase, "fr")
    seed = cli.json("key", "show", "alice", "--seed")  # for the counter page
    assert Signer(bytes.fromhex(str(seed["seed_hex"]))).public_key.hex() == public_key
    assert cli("key", "show", "alice", "--seed", RELANCE_PASSPHRASE="nope").exit_code == (
        Exit.KEYSTORE
    )
    # Failures: one line, a stable exit code, no traceback.
    wrong = cli("key", "show", "alice", "--phrase", "en", RELANCE_PASSPHRASE="nope")
    assert wrong.exit_code == Exit.KEYSTORE
    assert wrong.stderr.startswith("error: wrong passphrase") and wrong.stderr.count("\n") == 1
    assert cli("key", "new", "alice").exit_code == Exit.USAGE  # exists
    assert cli("key", "new", "bad/name").exit_code == Exit.USAGE
    assert cli("key", "new", "short", RELANCE_PASSPHRASE="short").exit_code == Exit.USAGE
    assert cli("key", "show", "nobody").exit_code == Exit.KEYSTORE
    bad = cli("key", "import", "x", "--phrase", input="not a phrase at all\n")
    assert bad.exit_code == Exit.USAGE


def test_the_passphrase_is_prompted_without_echo(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    del env["RELANCE_PASSPHRASE"]
    cli = Cli(env)
    created = cli(
        "key", "new", "bob", "--no-phrase", input="a long passphrase\na long passphrase\n"
    )
    assert created.exit_code == 0, created.stderr
    assert "a long passphrase" not in created.stdout + created.stderr
    assert "Passphrase for new key 'bob'" in created.stderr
    shown = cli("key", "show", "bob", "--phrase", "en", input="a long passphrase\n")
    assert shown.exit_code == 0
    mismatch = cli(
        "key", "new", "carl", "--no-phrase", input="a long passphrase\nanother one!!\n\n"
    )
    assert mismatch.exit_code != 0
