"""``relance-node governance`` without a running node: writing, approving and showing a
proposal file on real node homes (made by ``relance-node init``), and its refusals.
Submitting is shown on a real devnet in ``test_governance.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.run.cli import main

ISSUER = "ab" * 32


def _run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["governance", *args], input=input)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    made = CliRunner().invoke(main, ["init", "--home", str(path)])
    assert made.exit_code == 0, made.output
    return path


def _propose(home: Path, out: Path) -> Result:
    return _run("propose-issuer", "--home", str(home), "--issuer", ISSUER, "--name",
                "Ville de Dinant", "--territory", "Dinant", "--zone", "DIN-1",
                "--out", str(out))  # fmt: skip


def test_a_proposal_is_written_with_its_author_s_approval(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "admit.json"
    done = _propose(home, out)
    assert done.exit_code == 0, done.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["kind"] == "admit_issuer" and len(doc["approvals"]) == 1
    shown = _run("show", str(out))
    assert shown.exit_code == 0 and "Ville de Dinant" in shown.output
    assert "approvals: 1" in shown.output
    # Never over an existing file.
    again = _propose(home, out)
    assert again.exit_code == 2 and "exists" in again.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".admit")] == []


def test_approving_asks_first_and_another_chain_is_refused(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "admit.json"
    assert _propose(home, out).exit_code == 0
    before = out.read_text(encoding="utf-8")
    declined = _run("approve", "--home", str(home), str(out), input="n\n")
    assert declined.exit_code == 7 and "Ville de Dinant" in declined.output
    assert out.read_text(encoding="utf-8") == before  # nothing signed
    again = _run("approve", "--yes", "--home", str(home), str(out))
    assert again.exit_code == 0  # the same validator again: its approval is replaced
    assert len(json.loads(out.read_text(encoding="utf-8"))["approvals"]) == 1

    other = tmp_path / "other"
    assert CliRunner().invoke(main, ["init", "--home", str(other)]).exit_code == 0
    doc = json.loads(before)
    doc["chain_id"] = "relance-another"
    doc["approvals"] = []
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(doc), encoding="utf-8")
    refused = _run("approve", "--yes", "--home", str(other), str(moved))
    assert refused.exit_code == 2 and "is for chain 'relance-another'" in refused.output


def test_a_tampered_or_broken_file_is_named(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "admit.json"
    assert _propose(home, out).exit_code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc["zones"] = ["DIN-1", "DIN-2"]  # changed after the approval
    out.write_text(json.dumps(doc), encoding="utf-8")
    shown = _run("show", str(out))
    assert shown.exit_code == 2 and "does not verify" in shown.output
    out.write_text("{not json", encoding="utf-8")
    assert _run("show", str(out)).exit_code == 2
    bad = _run("propose-validators", "--home", str(home), "--effective-height", "9",
               "--validator", "x,commune,00", "--out", str(tmp_path / "v.json"))  # fmt: skip
    assert bad.exit_code == 2 and "64 hex digits" in bad.output
    odd = _run("propose-validators", "--home", str(home), "--effective-height", "9",
               "--validator", f"x,commune,{ISSUER},²",
               "--out", str(tmp_path / "v.json"))  # fmt: skip
    assert odd.exit_code == 2 and "the power is 1 to" in odd.output


def test_an_upgrade_proposal_names_the_protocol_and_the_release(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "upgrade.json"
    done = _run("propose-upgrade", "--home", str(home), "--protocol", "tx2.block2",
                "--software", "0.9.0", "--height", "500", "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["kind"], doc["protocol"], doc["software"], doc["height"]) == (
        "schedule_upgrade", "tx2.block2", "0.9.0", 500,
    )  # fmt: skip
    assert len(doc["approvals"]) == 1
    shown = _run("show", str(out))
    assert "upgrade to the protocol tx2.block2 from height 500" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--protocol", "tx2 block2", "--software", "0.9.0", "--height", "9"), "--protocol"),
        (("--protocol", "tx2.block2", "--software", "0.9\n", "--height", "9"), "--software"),
        (("--protocol", "tx2.block2", "--software", "0.9.0"), "one of --height"),
        (
            ("--protocol", "p", "--software", "0.9.0", "--height", "9", "--in-blocks", "5"),
            "one of --height",
        ),
    ],
)
def test_a_bad_upgrade_proposal_is_refused(
    home: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "upgrade.json"
    done = _run("propose-upgrade", "--home", str(home), *args, "--out", str(out))
    assert done.exit_code == 2 and message in done.output, done.output
    assert not out.exists()
