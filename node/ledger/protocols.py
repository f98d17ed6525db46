"""Rule sets: which rules apply at a height, by the protocol in force there.

A protocol names the encodings (``node.app.version.PROTOCOL_VERSION``) and the
rules a block is executed under. A release knows a few protocols, each with
its ``RuleSet``: a ``Rulebook`` (protocol name -> rules, and the protocol a
chain starts with). The protocol in force at a height is a fact of the
ledger's state, not of the node's configuration: the genesis protocol until
governance schedules another (``schedule_upgrade``, ``records.Upgrade``), that
one from its height on. ``BlockExecutor`` asks the rulebook for the rules of
the protocol in force at its height; every node, and every replay of the
chain (the audit), so picks the same rules for the same block.

A protocol in force that the rulebook does not know raises ``UnknownProtocol``:
the node stops before such a height (``node.app.upgrades``), so meeting it here is
a replay by a release too old for the chain.

What differs between rule sets stays small and explicit: the fields of
``RuleSet``. The production release knows one protocol; the test release
(``tools.faults.node``) adds a "next" one with a tighter memo cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from node.ledger import records as r
from node.protocol import limits
from node.protocol.errors import LedgerError


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules that may differ from one protocol to the next."""

    protocol: str  # the protocol these are the rules of
    memo_chars_max: int = limits.MEMO_CHARS_MAX  # a pay's, refund's or transfer's memo

    def memo_fits(self, memo: str) -> bool:
        return len(memo) <= self.memo_chars_max


class UnknownProtocol(LedgerError, RuntimeError):
    """The protocol in force at a height is not one this release has rules for."""

    def __init__(self, protocol: str, height: int | None, known: frozenset[str]) -> None:
        at = "" if height is None else f" at height {height}"
        super().__init__(
            f"protocol {protocol} is in force{at}, and this software has no rules for it "
            f"(it knows {', '.join(sorted(known))}): install a release that knows it"
        )
        self.protocol = protocol
        self.height = height


@dataclass(frozen=True, slots=True)
class Rulebook:
    """The protocols a release can run: ``genesis``, the one a chain starts with, and
    ``rules``, every protocol it knows (``genesis`` among them) with its rules."""

    genesis: str
    rules: Mapping[str, RuleSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.genesis not in self.rules:
            raise ValueError(f"the rulebook has no rules for its genesis protocol {self.genesis}")
        for name, rules in self.rules.items():
            if rules.protocol != name:
                raise ValueError(f"the rules filed under {name} are those of {rules.protocol}")

    @staticmethod
    def of(genesis: RuleSet, *more: RuleSet) -> Rulebook:
        return Rulebook(genesis.protocol, {s.protocol: s for s in (genesis, *more)})

    def known(self) -> frozenset[str]:
        return frozenset(self.rules)

    def with_rules(self, extra: RuleSet) -> Rulebook:
        """This rulebook, knowing ``extra`` too (a release that adds a protocol)."""
        return Rulebook(self.genesis, {**self.rules, extra.protocol: extra})

    def in_force(self, upgrade: r.Upgrade | None, height: int | None) -> str:
        """The protocol in force at ``height`` given the last scheduled upgrade.

        ``height`` None (a caller executing at the head without knowing its height):
        the protocol of the last upgrade, else the genesis protocol."""
        if upgrade is None:
            return self.genesis
        if height is None or upgrade.in_force(height):
            return upgrade.protocol
        return upgrade.previous

    def at(self, upgrade: r.Upgrade | None, height: int | None) -> RuleSet:
        """The rules of the protocol in force at ``height``; ``UnknownProtocol`` if none."""
        protocol = self.in_force(upgrade, height)
        found = self.rules.get(protocol)
        if found is None:
            raise UnknownProtocol(protocol, height, self.known())
        return found
