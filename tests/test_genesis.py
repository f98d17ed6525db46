"""The genesis document: parse, render, validation errors, hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.genesis import GenesisError, parse, render

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "genesis.example.toml"


def test_the_example_parses_and_renders_back_to_itself() -> None:
    genesis = parse(EXAMPLE.read_text(encoding="utf-8"))
    assert parse(render(genesis)) == genesis
    assert genesis.chain_id == "relance-example"
    assert len(genesis.validators) == 4
    assert {v.role for v in genesis.validators} == {"bank", "commune", "region"}


def test_the_hash_changes_with_any_field() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    base = parse(text).genesis_hash
    assert parse(text.replace("NAM-BOUGE", "NAM-BOUGE2")).genesis_hash != base
    assert (
        parse(text.replace("amount_max_cents = 100000000", "amount_max_cents = 5")).genesis_hash
        != base
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('chain_id = "relance-example"', "chain_id = 5", "chain_id"),
        ('role = "bank"', 'role = "king"', "role"),
        ("power = 1", "power = 0", "power"),
        ("state_tree_levels = 4", "state_tree_levels = 9", "state_tree_levels"),
        ('zones = ["WAL-RURAL"]', 'zones = ["NAM-CENTRE"]', "one issuer"),
        ('zones = ["WAL-RURAL"]', "zones = []", "zones"),
    ],
)
def test_invalid_documents_say_where(old: str, new: str, message: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(GenesisError, match=message):
        parse(text.replace(old, new, 1))


def test_a_key_that_is_not_32_bytes_of_hex_is_refused() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    broken = text.replace('public_key = "', 'public_key = "zz', 1)
    with pytest.raises(GenesisError, match="public_key"):
        parse(broken)


def test_not_toml_is_refused() -> None:
    with pytest.raises(GenesisError, match="not TOML"):
        parse("chain_id = ")
