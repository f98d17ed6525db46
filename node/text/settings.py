"""The one reader of settings files (``config.toml``, ``genesis.toml``, ``settlement.toml``,
a peers file): TOML parsed once, then read key by key through a ``Table`` whose getters are
typed and bounded. Every refusal is a ``ConfigError`` (or the caller's subclass of it) whose
message names the file, the table and the key: ``config.toml: p2p.port must be a port number``.

Depends on the standard library only: the protocol's genesis reads through it too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.protocol.errors import ProtocolError

TEXT_CHARS_MAX: Final = 255  # a setting's string, unless the caller says less or more


class ConfigError(ProtocolError, ValueError):
    """A settings file is not valid; the message names the file, the table and the key."""


def parse_toml(text: str, file: str, error: type[ConfigError] = ConfigError) -> Table:
    """The top-level table of ``text`` (the contents of ``file``)."""
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError; a 5,000-digit integer;
        raise error(f"{file}: not TOML: {exc}") from None  # arrays nested thousands deep
    return Table(file, "", doc, error)


def read_toml(path: Path, error: type[ConfigError] = ConfigError) -> Table:
    """The top-level table of the file at ``path``; its name in every error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path.name}: cannot be read: {exc}") from None
    return parse_toml(text, path.name, error)


@dataclass(frozen=True, slots=True)
class Table:
    """One table of a settings file: ``path`` is where it sits (``""`` at the top,
    ``p2p``, ``validators[0]``)."""

    file: str
    path: str
    values: Mapping[str, object]
    error: type[ConfigError] = ConfigError

    def where(self, key: str | None = None) -> str:
        """``table.key`` (``key`` at the top level; the table itself without a key)."""
        if key is None:
            return self.path or "the document"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | None, what: str) -> ConfigError:
        """The error to raise: ``<file>: <table.key> <what>``."""
        return self.error(f"{self.file}: {self.where(key)} {what}")

    def has(self, key: str) -> bool:
        return key in self.values

    def names(self) -> Collection[str]:
        return self.values.keys()

    def only(self, allowed: Collection[str], label: str | None = None) -> None:
        """Refuse keys other than ``allowed`` (a typo is an error, never a silent default)."""
        if set(self.values) - set(allowed):
            names = ", ".join(sorted(allowed))
            raise self.error(f"{self.file}: {label or self.where()} has only {names}")

    def table(self, key: str, *, optional: bool = False) -> Table:
        """The sub-table ``key``; an empty one when it is absent and ``optional``."""
        value = self.values.get(key)
        if value is None and optional:
            value = {}
        if not isinstance(value, dict):
            if value is None:
                raise self.error(f"{self.file}: [{self.where(key)}] is missing")
            raise self.fail(key, "must be a table")
        return Table(self.file, self.where(key), value, self.error)

    def tables(self, key: str) -> list[Table]:
        """The array of tables ``key`` (empty when absent)."""
        items = self.array(key, "must be an array of tables")
        return [self.as_table(item, f"{key}[{n}]") for n, item in enumerate(items)]

    def as_table(self, value: object, name: str) -> Table:
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table")
        return Table(self.file, self.where(name), value, self.error)

    def array(self, key: str, what: str = "must be a list") -> list[object]:
        """The array ``key`` (empty when absent)."""
        value = self.values.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, what)
        return value

    def text(self, key: str, max_chars: int = TEXT_CHARS_MAX, default: str | None = None) -> str:
        """A string of 1 to ``max_chars`` characters; ``default`` when absent, if given."""
        value = self.values.get(key, default)
        if not isinstance(value, str) or not 0 < len(value) <= max_chars:
            raise self.fail(key, f"must be a string of 1 to {max_chars} characters")
        return value

    def integer(
        self,
        key: str,
        low: int,
        high: int,
        default: int | None = None,
        unit: str = "an integer",
    ) -> int:
        """An integer from ``low`` to ``high`` (never a boolean); ``default`` when absent."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be {unit} from {low} to {high}")
        return value

    def port(self, key: str) -> int:
        value = self.values.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise self.fail(key, "must be a port number")
        return value

    def flag(self, key: str, default: bool | None = None) -> bool:
        """``true`` or ``false``; ``default`` when absent, if given."""
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def choice(self, key: str, choices: Collection[str], default: str) -> str:
        """One of ``choices``; ``default`` when absent."""
        value = self.values.get(key, default)
        if not isinstance(value, str) or value not in choices:
            raise self.fail(key, f"must be one of {', '.join(map(repr, choices))}")
        return value
