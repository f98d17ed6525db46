"""Hostile files in the genesis ceremony and in governance: membership files, genesis
documents, peers files, key files and proposals come from other organisations.
Whatever they hold (JSON or TOML nested thousands deep, a 5,000-digit integer, a file
of many megabytes) the command says what is wrong and exits 2, never a traceback;
``--out`` in a missing folder is the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.protocol import limits
from node.protocol.genesis import GenesisError, parse_draft
from node.run import membership
from node.run.cli import main
from node.run.config import ConfigError, parse_peers
from node.run.membership import MemberError

DEEP_JSON = "[" * 20_000 + "]" * 20_000  # under MEMBER_FILE_BYTES_MAX, past the recursion limit
HUGE_JSON = '{"chain_id": ' + "9" * 5_000 + "}"
DEEP_TOML = 'chain_id = "relance-x"\nx = ' + "[" * 5_000 + "]" * 5_000 + "\n"
HUGE_TOML = 'chain_id = "relance-x"\ngenesis_time_ms = ' + "9" * 5_000 + "\n"


def _node(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _refused(result: Result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, BaseException) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "error:" in result.output


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    out = tmp_path / "genesis.toml"
    made = _node("genesis", "new", "--chain-id", "relance-x", "--out", str(out))
    assert made.exit_code == 0, made.output
    return out


@pytest.mark.parametrize("text", [DEEP_JSON, HUGE_JSON], ids=["deep", "huge-integer"])
def test_a_hostile_membership_file_is_refused(tmp_path: Path, draft: Path, text: str) -> None:
    member = tmp_path / "member.json"
    member.write_text(text, encoding="ascii")
    with pytest.raises(MemberError, match="not JSON"):
        membership.read(member)
    _refused(_node("genesis", "add", str(draft), str(member)))


@pytest.mark.parametrize("text", [DEEP_TOML, HUGE_TOML], ids=["deep", "huge-integer"])
def test_a_hostile_genesis_document_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(GenesisError, match="not TOML"):
        parse_draft(text)
    genesis = tmp_path / "genesis.toml"
    genesis.write_text(text, encoding="ascii")
    _refused(_node("genesis", "hash", str(genesis)))


def test_an_oversized_genesis_document_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.toml"
    genesis.write_text(
        'chain_id = "relance-x"\n' + "#" * limits.GENESIS_FILE_BYTES_MAX + "\n", encoding="ascii"
    )
    result = _node("genesis", "hash", str(genesis))
    _refused(result)
    assert f"larger than {limits.GENESIS_FILE_BYTES_MAX} bytes" in result.output


@pytest.mark.parametrize("text", [DEEP_TOML, HUGE_TOML], ids=["deep", "huge-integer"])
def test_a_hostile_peers_file_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="not TOML"):
        parse_peers(text)


@pytest.mark.parametrize("text", [DEEP_JSON, HUGE_JSON], ids=["deep", "huge-integer"])
def test_a_hostile_account_key_file_is_refused(tmp_path: Path, draft: Path, text: str) -> None:
    key_file = tmp_path / "auditor.key"
    key_file.write_text(text, encoding="ascii")
    result = _node(
        "genesis", "add-auditor", str(draft), "--name", "Cour", "--account-key", str(key_file)
    )
    _refused(result)
    assert "neither 64 hex digits nor a wallet key file" in result.output


def test_out_in_a_missing_folder_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = _node(
        "genesis", "new", "--chain-id", "relance-x", "--out", str(tmp_path / "nowhere" / "g.toml")
    )
    _refused(result)
    assert "cannot write beside" in result.output


@pytest.mark.parametrize("text", [DEEP_JSON, HUGE_JSON], ids=["deep", "huge-integer"])
def test_a_hostile_governance_proposal_is_refused(tmp_path: Path, text: str) -> None:
    proposal = tmp_path / "proposal.json"
    proposal.write_text(text, encoding="ascii")
    result = _node("governance", "show", str(proposal))
    _refused(result)
    assert "not JSON" in result.output


def test_an_oversized_governance_proposal_is_refused(tmp_path: Path) -> None:
    proposal = tmp_path / "proposal.json"
    proposal.write_text(" " * limits.PROPOSAL_FILE_BYTES_MAX + "{}", encoding="ascii")
    result = _node("governance", "show", str(proposal))
    _refused(result)
    assert f"larger than {limits.PROPOSAL_FILE_BYTES_MAX} bytes" in result.output
