"""The guarded signer: durable before it signs, no regression, no conflict, restart, backup."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from node.consensus.signer import (
    FileRecordStore,
    GuardedSigner,
    SignerStateError,
    SignRecord,
    SignRefused,
    SignStep,
)
from node.consensus.types import FRESH, Lock, Resume, VoteKind, is_proposal_signed, is_vote_signed
from node.protocol import codec
from node.protocol.codec import DecodeError
from node.protocol.crypto import Signer, digest

CHAIN = "relance-test"
KEY = Signer(digest(b"signer-test-key"))
A = digest(b"block a")
B = digest(b"block b")


def guarded(path: Path) -> GuardedSigner:
    return GuardedSigner(KEY, CHAIN, FileRecordStore(path))


def test_signs_and_records_what_it_signed(tmp_path: Path) -> None:
    path = tmp_path / "sign-state"
    signer = guarded(path)
    assert signer.last_signed is None
    proposal = signer.sign_proposal(5, 0, A, -1)
    assert is_proposal_signed(proposal, CHAIN)
    vote = signer.sign_vote(VoteKind.PREVOTE, 5, 0, A)
    assert is_vote_signed(vote, CHAIN)
    record = SignRecord.decode(path.read_bytes())
    assert record.position == (5, 0, SignStep.PREVOTE)
    assert record == signer.last_signed
    assert not path.with_name(path.name + ".tmp").exists()


def test_the_same_payload_signs_again_a_different_one_never(tmp_path: Path) -> None:
    signer = guarded(tmp_path / "s")
    first = signer.sign_vote(VoteKind.PRECOMMIT, 7, 2, A)
    assert signer.sign_vote(VoteKind.PRECOMMIT, 7, 2, A) == first
    with pytest.raises(SignRefused):
        signer.sign_vote(VoteKind.PRECOMMIT, 7, 2, B)
    with pytest.raises(SignRefused):
        signer.sign_vote(VoteKind.PRECOMMIT, 7, 2, None)


@pytest.mark.parametrize(
    ("height", "round", "kind"),
    [(6, 9, VoteKind.PRECOMMIT), (7, 1, VoteKind.PRECOMMIT), (7, 2, VoteKind.PREVOTE)],
)
def test_refuses_any_regression(tmp_path: Path, height: int, round: int, kind: VoteKind) -> None:
    signer = guarded(tmp_path / "s")
    signer.sign_vote(VoteKind.PRECOMMIT, 7, 2, A)
    with pytest.raises(SignRefused):
        signer.sign_vote(kind, height, round, A)
    with pytest.raises(SignRefused):
        signer.sign_proposal(7, 2, A, -1)  # propose comes before precommit


def test_steps_advance_within_a_round_and_rounds_within_a_height(tmp_path: Path) -> None:
    signer = guarded(tmp_path / "s")

    def at() -> tuple[int, int, SignStep]:
        record = signer.last_signed
        assert record is not None
        return record.height, record.round, record.step

    assert is_proposal_signed(signer.sign_proposal(3, 0, A, -1), CHAIN)
    assert at() == (3, 0, SignStep.PROPOSE)
    assert is_vote_signed(signer.sign_vote(VoteKind.PREVOTE, 3, 0, A), CHAIN)
    assert at() == (3, 0, SignStep.PREVOTE)
    assert is_vote_signed(signer.sign_vote(VoteKind.PRECOMMIT, 3, 0, None), CHAIN)
    assert at() == (3, 0, SignStep.PRECOMMIT)
    assert is_vote_signed(signer.sign_vote(VoteKind.PREVOTE, 3, 1, B), CHAIN)  # a later round
    assert at() == (3, 1, SignStep.PREVOTE)
    assert is_proposal_signed(signer.sign_proposal(4, 0, B, -1), CHAIN)  # a later height
    assert at() == (4, 0, SignStep.PROPOSE)
    assert guarded(tmp_path / "s").last_signed == signer.last_signed  # and on disk


def test_a_restart_reloads_the_record_and_still_refuses(tmp_path: Path) -> None:
    path = tmp_path / "s"
    before_crash = guarded(path)
    signature = before_crash.sign_vote(VoteKind.PREVOTE, 9, 1, A).signature
    after_restart = guarded(path)  # a new process on the same file
    assert after_restart.last_signed == before_crash.last_signed
    with pytest.raises(SignRefused):
        after_restart.sign_vote(VoteKind.PREVOTE, 9, 1, None)
    with pytest.raises(SignRefused):
        after_restart.sign_vote(VoteKind.PREVOTE, 9, 0, A)
    assert after_restart.sign_vote(VoteKind.PREVOTE, 9, 1, A).signature == signature
    after_restart.sign_vote(VoteKind.PRECOMMIT, 9, 1, A)


def test_a_restored_backup_refuses_once_it_sees_its_own_newer_vote(tmp_path: Path) -> None:
    path, backup = tmp_path / "s", tmp_path / "backup"
    live = guarded(path)
    live.sign_vote(VoteKind.PRECOMMIT, 3, 0, A)
    shutil.copy(path, backup)
    live.sign_vote(VoteKind.PREVOTE, 10, 0, A)  # the network saw this one
    shutil.copy(backup, path)  # the operator restores last week's data directory

    restored = guarded(path)
    assert restored.last_signed is not None and restored.last_signed.height == 3
    restored.observe_own_vote(10, 0, SignStep.PREVOTE)  # our key's vote arrives from a peer
    for kind, height, round, block_hash in [
        (VoteKind.PREVOTE, 10, 0, B),
        (VoteKind.PREVOTE, 10, 0, A),  # at that point nothing at all
        (VoteKind.PREVOTE, 5, 0, A),
    ]:
        with pytest.raises(SignRefused):
            restored.sign_vote(kind, height, round, block_hash)
    assert guarded(path).last_signed == restored.last_signed  # and durably so
    restored.sign_vote(VoteKind.PRECOMMIT, 10, 0, None)
    restored.sign_vote(VoteKind.PREVOTE, 11, 0, A)


def test_observing_an_older_vote_changes_nothing(tmp_path: Path) -> None:
    signer = guarded(tmp_path / "s")
    signer.sign_vote(VoteKind.PREVOTE, 10, 2, A)
    before = signer.last_signed
    signer.observe_own_vote(10, 2, SignStep.PREVOTE)
    signer.observe_own_vote(9, 5, SignStep.PRECOMMIT)
    assert signer.last_signed == before
    assert signer.sign_vote(VoteKind.PREVOTE, 10, 2, A).block_hash == A


class FailingStore:
    def load(self) -> SignRecord | None:
        return None

    def save(self, record: SignRecord) -> None:
        raise OSError("disk full")


def test_no_signature_without_a_durable_record() -> None:
    signer = GuardedSigner(KEY, CHAIN, FailingStore())
    with pytest.raises(OSError):
        signer.sign_vote(VoteKind.PREVOTE, 1, 0, A)
    assert signer.last_signed is None


def test_save_syncs_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    guarded(tmp_path / "s").sign_vote(VoteKind.PREVOTE, 1, 0, A)
    assert len(synced) == 2  # the temporary file, then the directory after the rename


def test_a_corrupt_record_stops_the_signer(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_bytes(b"\x93garbage")
    with pytest.raises(SignerStateError):
        guarded(path)


def test_a_leftover_temporary_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "s"
    guarded(path).sign_vote(VoteKind.PREVOTE, 4, 0, A)
    path.with_name(path.name + ".tmp").write_bytes(b"half-written")  # a crash mid-save
    assert guarded(path).last_signed is not None
    with pytest.raises(SignRefused):
        guarded(path).sign_vote(VoteKind.PREVOTE, 4, 0, B)


def test_the_lock_is_recorded_with_each_precommit_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s"
    signer = guarded(path)
    signer.sign_vote(VoteKind.PREVOTE, 5, 0, A)
    assert signer.locked_at(5) is None
    signer.sign_vote(VoteKind.PRECOMMIT, 5, 1, A)
    assert signer.locked_at(5) == Lock(1, A)
    signer.sign_vote(VoteKind.PREVOTE, 5, 2, None)
    signer.sign_vote(VoteKind.PRECOMMIT, 5, 2, None)  # nil does not unlock
    signer.sign_proposal(5, 3, B, 2)
    assert signer.locked_at(5) == Lock(1, A)
    signer.sign_vote(VoteKind.PRECOMMIT, 5, 3, B)  # a newer lock replaces it
    assert guarded(path).locked_at(5) == Lock(3, B)
    assert guarded(path).locked_at(6) is None
    signer.sign_vote(VoteKind.PREVOTE, 6, 0, A)
    assert guarded(path).locked_at(5) is None and guarded(path).locked_at(6) is None


def test_a_lock_has_a_round_and_a_value_or_neither() -> None:
    record = SignRecord(5, 1, SignStep.PRECOMMIT, A, Lock(1, A))
    assert SignRecord.decode(record.encode()) == record
    half = codec.encode([1, 11, 5, 1, 3, A, -1, A])
    with pytest.raises(DecodeError):
        SignRecord.decode(half)


def test_a_restart_resumes_after_the_last_round_signed(tmp_path: Path) -> None:
    path = tmp_path / "s"
    assert guarded(path).resume_at(5) == FRESH
    guarded(path).sign_vote(VoteKind.PRECOMMIT, 5, 2, A)
    assert guarded(path).resume_at(5) == Resume(3, Lock(2, A))
    assert guarded(path).resume_at(6) == FRESH
