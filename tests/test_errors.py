"""One error base per layer (``node.protocol.errors``): every exception class of the node, the
wallet and the tools derives from ``RelanceError``; no invariant is a bare ``RuntimeError``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from node.protocol import errors

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("node", "wallets", "tools") for p in (ROOT / d).rglob("*.py"))
# Control flow, not errors: a request to stop the application, an audit worker's stop signal.
NOT_ERRORS = {("node.consensus.app_interface", "ApplicationHalt"), ("tools.audit.chain", "_Stop")}
BARE_RAISES_LEFT: set[str] = set()


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _exception_classes() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                (
                    isinstance(b, ast.Name)
                    and ("Error" in b.id or b.id.endswith(("Exception", "Fault")))
                )
                or (isinstance(b, ast.Attribute) and b.attr.endswith("Exception"))
                or (isinstance(b, ast.Name) and b.id in {"Exception", "Unreachable", "TooLarge"})
                for b in node.bases
            ):
                found.append((_module(path), node.name))
    return found


def test_the_scan_finds_the_classes() -> None:
    classes = _exception_classes()
    assert ("node.store.blockstore", "StoreError") in classes
    assert ("tools.faults.cluster", "ClusterError") in classes
    assert ("wallets.exits", "WalletError") in classes
    assert len(classes) > 30


@pytest.mark.parametrize(("module", "name"), _exception_classes())
def test_every_exception_class_has_its_layer_s_base(module: str, name: str) -> None:
    if (module, name) in NOT_ERRORS:
        return
    cls = getattr(importlib.import_module(module), name)
    if issubclass(cls, BaseException):
        assert issubclass(cls, errors.RelanceError), f"{module}.{name}: {cls.__mro__}"


def test_no_invariant_is_a_bare_runtime_error() -> None:
    bare = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if "raise RuntimeError(" in path.read_text(encoding="utf-8")
        and str(path.relative_to(ROOT)) not in BARE_RAISES_LEFT
    ]
    assert bare == []


def test_an_invariant_broken_is_still_a_runtime_error_of_its_layer() -> None:
    for layer, broken in [
        (errors.LedgerError, errors.LedgerInvariantBroken),
        (errors.ConsensusError, errors.ConsensusInvariantBroken),
        (errors.StorageError, errors.StoreInvariantBroken),
        (errors.ApiProblem, errors.ApiInvariantBroken),
        (errors.SettlementError, errors.SettlementInvariantBroken),
        (errors.WalletProblem, errors.WalletInvariantBroken),
    ]:
        assert issubclass(broken, layer) and issubclass(broken, RuntimeError)
        assert issubclass(layer, errors.RelanceError)
