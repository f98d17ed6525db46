"""``node.text.settings``: the one reader of settings files. Typed, bounded getters; one error
type whose message names the file, the table and the key; used by the node's config, the
genesis, the settlement service's settings and the backup."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.protocol import genesis
from node.run import config
from node.settlement.service import SettingsError, read_settings
from node.text.settings import ConfigError, parse_toml, read_toml

DOC = """
moniker = "n"
validator = true
[p2p]
host = "h"
port = 70000
peers = [{ public_key = "zz", host = "h", port = 1 }, 5]
[log]
format = "xml"
"""


def test_an_error_names_the_file_the_table_and_the_key() -> None:
    doc = parse_toml(DOC, "config.toml")
    p2p = doc.table("p2p")
    with pytest.raises(ConfigError, match=r"^config\.toml: p2p\.port must be a port number$"):
        p2p.port("port")
    with pytest.raises(ConfigError, match=r"^config\.toml: p2p\.peers\[1\] must be a table$"):
        p2p.tables("peers")
    with pytest.raises(ConfigError, match=r"^config\.toml: \[api\] is missing$"):
        doc.table("api")
    with pytest.raises(ConfigError, match=r"^config\.toml: log\.format must be one of 'text'"):
        doc.table("log").choice("format", ("text", "json"), "text")


def test_getters_are_typed_and_bounded() -> None:
    doc = parse_toml('a = true\nb = 3\nc = "xyz"\nd = [1]\n', "f.toml")
    with pytest.raises(ConfigError, match=r"f\.toml: a must be an integer from 0 to 9"):
        doc.integer("a", 0, 9)  # a boolean is not an integer
    with pytest.raises(ConfigError, match="b must be an integer from 4 to 9"):
        doc.integer("b", 4, 9)
    with pytest.raises(ConfigError, match="c must be a string of 1 to 2 characters"):
        doc.text("c", 2)
    with pytest.raises(ConfigError, match="b must be true or false"):
        doc.flag("b")
    with pytest.raises(ConfigError, match="c must be a list"):
        doc.array("c")
    with pytest.raises(ConfigError, match=r"f\.toml: the document has only a, b"):
        doc.only({"a", "b"})
    assert (doc.integer("b", 0, 9), doc.text("c"), doc.flag("a"), doc.array("d")) == (
        3,
        "xyz",
        True,
        [1],
    )
    assert (
        doc.integer("absent", 0, 9, 7) == 7 and doc.table("absent", optional=True).names() == set()
    )


@pytest.mark.parametrize("text", ["a = [" * 5_000 + "]" * 5_000, "a = " + "9" * 5_000, "a ="])
def test_what_is_not_toml_is_the_error_naming_the_file(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^x\.toml: not TOML"):
        parse_toml(text, "x.toml")


def test_an_unreadable_file_is_the_error_too(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"^s\.toml: cannot be read"):
        read_toml(tmp_path / "s.toml")
    with pytest.raises(ConfigError, match=r"^absent\.toml: cannot be read"):
        read_toml(tmp_path / "absent.toml")


def test_every_settings_file_refuses_with_the_one_error_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config\.toml: p2p\.port must be a port number"):
        config.parse(DOC.replace('[log]\nformat = "xml"', "") + '[api]\nhost = "h"\nport = 1\n')
    with pytest.raises(ConfigError, match=r"^genesis\.toml: chain_id must be a string"):
        genesis.parse("chain_id = 5\n")
    (tmp_path / "settlement.toml").write_text('bank_key_file = "k"\nday_ms = 5\n', "utf-8")
    with pytest.raises(ConfigError, match=r"^settlement\.toml: day_ms must be an integer from"):
        read_settings(tmp_path)
    assert issubclass(genesis.GenesisError, ConfigError) and issubclass(SettingsError, ConfigError)
    assert config.ConfigError is ConfigError
