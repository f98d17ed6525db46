"""The genesis document: parse, render, validation errors, hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.protocol.genesis import GenesisError, ProtocolLimits, parse, render

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
        # Voucher QR codes carry the chain id in capitals; headers hold 48 characters.
        ('chain_id = "relance-example"', 'chain_id = "relance_example"', "chain_id may hold"),
        ('chain_id = "relance-example"', 'chain_id = "relance example"', "chain_id may hold"),
        ('chain_id = "relance-example"', f'chain_id = "{"r" * 49}"', "1 to 48 characters"),
        # A genesis may lower the node's caps on transactions and blocks, never raise them.
        ("tx_bytes_max = 262144", "tx_bytes_max = 262145", "tx_bytes_max"),
        ("block_txs_max = 2000", "block_txs_max = 2001", "block_txs_max"),
        ("block_bytes_max = 4194304", "block_bytes_max = 4194305", "block_bytes_max"),
        ('role = "bank"', 'role = "king"', "role"),
        ("power = 1", "power = 0", "power"),
        # Protocol 3 has no tree levels to choose: an old genesis says so, not silently.
        ("block_bytes_max = 4194304", "block_bytes_max = 4194304\nstate_tree_levels = 4", "gone"),
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


def test_the_longest_chain_id_and_lower_limits_are_taken() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    longest = "R.e-" * 12
    text = text.replace('chain_id = "relance-example"', f'chain_id = "{longest}"')
    genesis = parse(text.replace("block_txs_max = 2000", "block_txs_max = 2"))
    assert genesis.chain_id == longest and genesis.limits.block_txs_max == 2


def test_a_block_s_excess_over_the_limits_is_named() -> None:
    caps = ProtocolLimits(tx_bytes_max=1_024, block_txs_max=3, block_bytes_max=4_096)
    assert caps.block_excess([b"x" * 1_024] * 3) is None
    assert caps.block_excess([b"x"] * 4) == "4 transactions, more than 3"
    assert caps.block_excess([b"x" * 1_024] * 2 + [b"x" * 2_049]) == (
        "4097 bytes of transactions, more than 4096"
    )
    assert caps.block_excess([b"x", b"x" * 1_025]) == "transaction 1 is 1025 bytes, more than 1024"
