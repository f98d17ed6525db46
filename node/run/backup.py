"""Backups of a node home, taken while the node runs, and a restore that never double-signs.

``relance-node backup --home DIR --out FILE`` writes one tar archive:

- ``manifest.json``   format, chain id, genesis hash, the store's height, the time,
                      whether secret keys are in it, and the SHA-256 of every member;
- ``store.records``   every record of the LevelDB store as of one instant (a LevelDB
                      snapshot: consistent while blocks go on being committed), each
                      as ``u32 key length, u32 value length, key, value``;
- ``home/...``        ``config.toml``, ``genesis.toml``, ``member.json``, the signer's
                      ``sign_state`` and ``locked_block``, and for the bank
                      ``settlement.toml`` and ``settlement/`` (its SQLite journal copied
                      with SQLite's online backup, and the pain.001 files).

Left out, because they must not or need not move between hosts: ``node_key`` and the
bank's settlement key (only with ``--with-key``: the archive is then as secret as the
keys); ``tls/`` and any other certificate (made for one host name); the history index
and the views' files (derived: rebuilt from the blocks); logs.

A running node holds its LevelDB lock, so the command leaves a request in
``<home>/backup/requests/`` and the node (``serve_backups``) writes the archive from
its own snapshot, then a ``.done`` file with the outcome. A stopped node's home is
read directly. The archive is written next to ``--out`` (mode 0600) and renamed.

``relance-node restore --home DIR FILE`` checks every hash, then writes a new store
and the home files. A validator's signer state in a backup is older than the one it
had when it stopped: restoring it alone would let the node sign again at heights it
already signed. So the restore leaves ``restored.json`` in the home, and at start
the signer is wrapped in a ``RestoreFence``: it signs nothing until it has committed
a block the network made after this start (block time past the start plus the clock
drift allowed), and then only above that block's height plus
``limits.RESTORE_MARGIN_HEIGHTS``. The old instance, stopped before, cannot have
signed there. If the home still holds a newer ``sign_state``, the newer is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from node.consensus.driver import ConsensusSigner
from node.consensus.signer import SignRecord, SignRefused, SignStep, write_durably
from node.consensus.types import Proposal, Resume, Vote, VoteKind
from node.protocol import limits
from node.protocol.genesis import GenesisError
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.store.blockstore import BlockStore, StoreError

logger = logging.getLogger(__name__)

FORMAT: Final = "relance-backup/1"
MANIFEST: Final = "manifest.json"
STORE_RECORDS: Final = "store.records"
HOME_PREFIX: Final = "home/"
HOME_FILES: Final = (
    config.CONFIG_FILE,
    config.GENESIS_FILE,
    "member.json",
    "settlement.toml",
    config.SIGN_STATE_FILE,
    config.LOCKED_BLOCK_FILE,
)
SETTLEMENT_DIR: Final = "settlement"
JOURNAL_FILE: Final = "bank.sqlite"  # node.settlement.journal.FILE_NAME, copied online
RESTORED_FILE: Final = "restored.json"
BACKUP_DIR: Final = "backup"
REQUESTS_DIR: Final = "requests"
_MEMBER_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,100}(/[A-Za-z0-9._-]{1,100}){0,4}")
_REQUEST_NAME: Final = re.compile(r"[0-9a-f]{32}\.json")
_LENGTHS: Final = struct.Struct(">II")
MANIFEST_BYTES_MAX: Final = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Manifest:
    chain_id: str
    genesis_hash: str
    height: int
    created_ms: int
    with_key: bool
    files: dict[str, str]  # member name -> SHA-256 hex

    def encode(self) -> bytes:
        document = {
            "format": FORMAT,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "height": self.height,
            "created_ms": self.created_ms,
            "with_key": self.with_key,
            "files": self.files,
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            files = doc["files"]
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v)
                for k, v in files.items()
            ):
                raise ValueError("files must map names to SHA-256 hex")
            manifest = cls(
                str(doc["chain_id"]),
                str(doc["genesis_hash"]),
                int(doc["height"]),
                int(doc["created_ms"]),
                bool(doc["with_key"]),
                dict(files),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"unreadable manifest: {exc}") from None
        if STORE_RECORDS not in manifest.files or len(manifest.files) > limits.BACKUP_FILES_MAX:
            raise BackupError("the manifest lists no store, or too many files")
        return manifest


# --- writing an archive ------------------------------------------------------------


def write_archive(home: Path, store: BlockStore, out: Path, with_key: bool) -> Manifest:
    """Write the archive of ``home`` (its store open as ``store``) to ``out``."""
    genesis_text = (home / config.GENESIS_FILE).read_text(encoding="utf-8")
    try:
        genesis = parse_genesis(genesis_text)
    except GenesisError as exc:
        raise BackupError(f"{home}: {exc}") from None
    out = out.absolute()
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".relance-backup-") as work:
        staging = Path(work)
        files: dict[str, str] = {}
        records = staging / STORE_RECORDS
        with store.records_snapshot() as (height, items), open(records, "wb") as file:
            files[STORE_RECORDS] = _write_records(file, items)
        staged = dict(_stage_home(home, staging, with_key))
        for name, path in staged.items():
            files[name] = _sha256_file(path)
        manifest = Manifest(
            genesis.chain_id,
            genesis.genesis_hash.hex(),
            height,
            time.time_ns() // 1_000_000,
            with_key,
            files,
        )
        partial = out.with_name(out.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            _add_bytes(tar, MANIFEST, manifest.encode())
            tar.add(records, STORE_RECORDS, recursive=False)
            for name, path in staged.items():
                tar.add(path, name, recursive=False)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    return manifest


def _write_records(file: IO[bytes], items: Iterator[tuple[bytes, bytes]]) -> str:
    digest = hashlib.sha256()
    for key, value in items:
        chunk = _LENGTHS.pack(len(key), len(value)) + key + value
        digest.update(chunk)
        file.write(chunk)
    return digest.hexdigest()


def _stage_home(home: Path, staging: Path, with_key: bool) -> Iterator[tuple[str, Path]]:
    """Copy every home file that goes in under ``staging`` (the journal by SQLite's online
    backup); yield (archive name, copy)."""
    names = list(HOME_FILES)
    if with_key:
        names.append(config.NODE_KEY_FILE)
        names += _settlement_key_file(home)
    settlement = home / SETTLEMENT_DIR
    if settlement.is_dir():
        names += [
            path.relative_to(home).as_posix()
            for path in sorted(settlement.rglob("*"))
            if path.is_file() and not path.name.startswith(JOURNAL_FILE)
        ]
    for name in names[: limits.BACKUP_FILES_MAX]:
        if (home / name).is_file():
            copy = staging / HOME_PREFIX / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(home / name, copy)
            yield HOME_PREFIX + name, copy
    journal = settlement / JOURNAL_FILE
    if journal.is_file():
        name = f"{SETTLEMENT_DIR}/{JOURNAL_FILE}"
        copy = staging / HOME_PREFIX / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        _copy_journal(journal, copy)
        yield HOME_PREFIX + name, copy


def _settlement_key_file(home: Path) -> list[str]:
    try:
        doc = tomllib.loads((home / "settlement.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    name = doc.get("bank_key_file")
    return [name] if isinstance(name, str) and _MEMBER_NAME.fullmatch(name) else []


def _copy_journal(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the settlement service writes."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- backing up a home, running or not ---------------------------------------------


def node_is_running(home: Path) -> bool:
    """Whether a process holds the LevelDB lock of ``home``'s store."""
    lock = home / config.DATA_DIR / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def backup(home: Path, out: Path, with_key: bool, wait_s: float = limits.BACKUP_WAIT_S) -> int:
    """Back ``home`` up to ``out``; returns the store's height in it."""
    if not (home / config.GENESIS_FILE).is_file():
        raise BackupError(f"{home} is not a node home")
    if node_is_running(home):
        return _ask_running_node(home, out.absolute(), with_key, wait_s)
    genesis = parse_genesis((home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    try:
        store = BlockStore.open(home / config.DATA_DIR, genesis.genesis_hash, create=False)
    except StoreError as exc:
        raise BackupError(str(exc)) from None
    try:
        return write_archive(home, store, out, with_key).height
    finally:
        store.close()


def _ask_running_node(home: Path, out: Path, with_key: bool, wait_s: float) -> int:
    folder = home / BACKUP_DIR / REQUESTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    request = folder / f"{uuid.uuid4().hex}.json"
    write_durably(request, json.dumps({"out": str(out), "with_key": with_key}).encode())
    done = request.with_suffix(".done")
    deadline = time.monotonic() + wait_s
    while not done.exists():
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            raise BackupError(f"the node of {home} did not answer within {wait_s:.0f} s")
        time.sleep(limits.BACKUP_POLL_S / 2)
    outcome = json.loads(done.read_text(encoding="utf-8"))
    done.unlink(missing_ok=True)
    if "error" in outcome:
        raise BackupError(str(outcome["error"]))
    return int(outcome["height"])


async def serve_backups(home: Path, store: BlockStore) -> None:
    """Take backup requests left in the home and answer each (the node's side)."""
    folder = home / BACKUP_DIR / REQUESTS_DIR
    while True:
        if folder.is_dir():
            for request in sorted(folder.iterdir())[: limits.BACKUP_FILES_MAX]:
                if _REQUEST_NAME.fullmatch(request.name):
                    await _answer(home, store, request)
        await asyncio.sleep(limits.BACKUP_POLL_S)


async def _answer(home: Path, store: BlockStore, request: Path) -> None:
    outcome: dict[str, object]
    try:
        asked = json.loads(request.read_text(encoding="utf-8"))
        out = Path(str(asked["out"]))
        if not out.is_absolute():
            raise BackupError("the archive path must be absolute")
        work = asyncio.ensure_future(
            asyncio.to_thread(write_archive, home, store, out, asked["with_key"] is True)
        )
        try:
            made = await asyncio.shield(work)
        except asyncio.CancelledError:  # the node stops: the store stays open until it is done
            with contextlib.suppress(Exception):
                await work
            raise
        outcome = {"height": made.height}
        logger.info("backup written to %s at height %d", out, made.height)
    except (BackupError, OSError, ValueError, KeyError, StoreError, sqlite3.Error) as exc:
        outcome = {"error": str(exc)}
        logger.error("backup failed: %s", exc)
    request.unlink(missing_ok=True)
    write_durably(request.with_suffix(".done"), json.dumps(outcome).encode())


# --- restoring ------------------------------------------------------------------------


def restore(archive: Path, home: Path, replace: bool) -> Manifest:
    """Restore ``archive`` into ``home`` (new, or with ``replace`` the same chain's home)."""
    if node_is_running(home):
        raise BackupError(f"the node of {home} is running: stop it first")
    if (home / config.DATA_DIR).exists() and not replace:
        raise BackupError(f"{home} has a store: pass --replace to replace it (it is kept aside)")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".restore-") as work:
        staging = Path(work)
        manifest = _extract(archive, staging)
        genesis = _check_genesis(manifest, staging, home)
        node_key = staging / HOME_PREFIX / config.NODE_KEY_FILE
        if not node_key.exists() and not (home / config.NODE_KEY_FILE).exists():
            raise BackupError(
                f"the archive has no node key (made without --with-key) and {home} has none: "
                f"put this node's {config.NODE_KEY_FILE} in {home} first"
            )
        data = home / config.DATA_DIR
        loading = staging / config.DATA_DIR
        BlockStore.load_records(
            loading, _read_records(staging / STORE_RECORDS), limits.BACKUP_RESTORE_BATCH_RECORDS
        )
        BlockStore.open(loading, genesis, create=False).close()  # the genesis it claims
        _keep_newer_sign_state(home, staging / HOME_PREFIX)
        if data.exists():
            data.rename(home / f"{config.DATA_DIR}.replaced-{time.time_ns() // 1_000_000}")
        loading.rename(data)
        for path in sorted((staging / HOME_PREFIX).rglob("*")):
            if path.is_file():
                target = home / path.relative_to(staging / HOME_PREFIX)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        for stale in ("index", "views"):  # derived from the blocks: rebuilt at start
            shutil.rmtree(home / stale, ignore_errors=True)
        marker = {"height": manifest.height, "restored_ms": time.time_ns() // 1_000_000}
        write_durably(home / RESTORED_FILE, json.dumps(marker).encode())
    return manifest


def _extract(archive: Path, staging: Path) -> Manifest:
    """Every member into ``staging``, checked against the manifest's names and hashes."""
    try:
        tar = tarfile.open(archive, mode="r:")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive}: not a backup archive: {exc}") from None
    with tar:
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isfile():
            raise BackupError(f"{archive}: the first member is not {MANIFEST}")
        if first.size > MANIFEST_BYTES_MAX:
            raise BackupError(f"{archive}: the manifest is too large")
        manifest = Manifest.decode(_read_member(tar, first))
        seen: set[str] = set()
        while (member := tar.next()) is not None:
            name = member.name
            if name not in manifest.files or name in seen or not member.isfile():
                raise BackupError(f"{archive}: unexpected member {name!r}")
            if not allowed_member(name):
                raise BackupError(f"{archive}: unsafe member name {name!r}")
            if name != STORE_RECORDS and member.size > limits.BACKUP_FILE_BYTES_MAX:
                raise BackupError(f"{archive}: {name} is too large")
            seen.add(name)
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise BackupError(f"{archive}: {name} is unreadable")
            digest = hashlib.sha256()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
            if digest.hexdigest() != manifest.files[name]:
                raise BackupError(f"{archive}: {name} does not match its hash: damaged")
        if seen != set(manifest.files):
            missing = ", ".join(sorted(set(manifest.files) - seen))
            raise BackupError(f"{archive}: members missing: {missing}")
    return manifest


RESERVED: Final = frozenset(
    {config.DATA_DIR, "index", "views", BACKUP_DIR, RESTORED_FILE}
)  # home names a restore never takes from an archive


def allowed_member(name: str) -> bool:
    """The store records, or a file under ``home/`` outside the store and derived folders."""
    if name == STORE_RECORDS:
        return True
    if not name.startswith(HOME_PREFIX) or not _MEMBER_NAME.fullmatch(name):
        return False
    parts = name.split("/")[1:]
    return bool(parts) and parts[0] not in RESERVED and not any(p.startswith(".") for p in parts)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    if source is None:
        raise BackupError(f"{member.name} is unreadable")
    return source.read(MANIFEST_BYTES_MAX + 1)


def _check_genesis(manifest: Manifest, staging: Path, home: Path) -> bytes:
    try:
        text = (staging / HOME_PREFIX / config.GENESIS_FILE).read_text(encoding="utf-8")
        genesis = parse_genesis(text)
    except (OSError, GenesisError) as exc:
        raise BackupError(f"the archive's genesis is unusable: {exc}") from None
    if genesis.genesis_hash.hex() != manifest.genesis_hash:
        raise BackupError("the archive's genesis does not match its manifest")
    existing = home / config.GENESIS_FILE
    if existing.exists():
        try:
            ours = parse_genesis(existing.read_text(encoding="utf-8")).genesis_hash
        except GenesisError as exc:
            raise BackupError(f"{existing}: {exc}") from None
        if ours != genesis.genesis_hash:
            raise BackupError(f"{home} belongs to another chain than the archive")
    return genesis.genesis_hash


def _read_records(path: Path) -> Iterator[tuple[bytes, bytes]]:
    with open(path, "rb") as file:
        while header := file.read(_LENGTHS.size):
            if len(header) != _LENGTHS.size:
                raise BackupError("store.records is truncated")
            key_length, value_length = _LENGTHS.unpack(header)
            if key_length + value_length > limits.BACKUP_RECORD_BYTES_MAX:
                raise BackupError("store.records holds an oversized record")
            record = file.read(key_length + value_length)
            if len(record) != key_length + value_length:
                raise BackupError("store.records is truncated")
            yield record[:key_length], record[key_length:]


def _keep_newer_sign_state(home: Path, restored: Path) -> None:
    """If the home still has a signer state newer than the archive's, keep the newer."""
    live, old = home / config.SIGN_STATE_FILE, restored / config.SIGN_STATE_FILE
    if not live.exists() or not old.exists():
        return
    try:
        if (
            SignRecord.decode(live.read_bytes()).position
            > SignRecord.decode(old.read_bytes()).position
        ):
            old.unlink()  # the home's newer record stays in place
    except ValueError as exc:
        raise BackupError(f"unreadable signer state: {exc}") from None


# --- the restored validator's fence -------------------------------------------------------


def restored_height(home: Path) -> int | None:
    """The backup height if ``home`` was restored and its validator has not signed since."""
    try:
        marker = json.loads((home / RESTORED_FILE).read_text(encoding="utf-8"))
        return int(marker["height"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return 0  # unreadable: fenced all the same


class RestoreFence:
    """A ``ConsensusSigner`` for a validator restored from a backup: signs nothing until
    the network has committed, after this start, a block past which the old instance
    cannot have signed (see the module's text)."""

    __slots__ = ("_clear_above", "_home", "_inner", "_not_before_ms", "_restored_at")

    def __init__(
        self, inner: ConsensusSigner, home: Path, restored_at: int, start_ms: int, drift_ms: int
    ) -> None:
        self._inner = inner
        self._home = home
        self._restored_at = restored_at
        self._not_before_ms = start_ms + drift_ms
        self._clear_above: int | None = None
        logger.warning(
            "restored from a backup at height %d: not signing until the network is past "
            "what this validator may have signed before",
            restored_at,
        )

    @property
    def lifted(self) -> bool:
        return not (self._home / RESTORED_FILE).exists()

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def on_commit(self, height: int, time_ms: int) -> None:
        """A block is stored (synced or decided): is it the network's, after our start?"""
        if self._clear_above is None and time_ms > self._not_before_ms:
            self._clear_above = height + limits.RESTORE_MARGIN_HEIGHTS
            logger.warning("restored validator: signing again above height %d", height)

    def _check(self, height: int) -> None:
        if self.lifted:
            return
        if self._clear_above is None or height <= self._clear_above:
            raise SignRefused(
                f"restored from a backup at height {self._restored_at}: not signing at "
                f"{height} until the network is past what this key may have signed"
            )
        (self._home / RESTORED_FILE).unlink(missing_ok=True)
        logger.warning("restored validator: fence lifted, signing at height %d", height)

    def sign_proposal(
        self, height: int, round: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        self._check(height)
        return self._inner.sign_proposal(height, round, block_hash, valid_round)

    def sign_vote(self, kind: VoteKind, height: int, round: int, block_hash: bytes | None) -> Vote:
        self._check(height)
        return self._inner.sign_vote(kind, height, round, block_hash)

    def observe_own_vote(self, height: int, round: int, step: SignStep) -> None:
        self._inner.observe_own_vote(height, round, step)

    def resume_at(self, height: int) -> Resume:
        return self._inner.resume_at(height)
