"""``relance-audit``: check a node's data against the genesis file alone.

``verify`` replays the whole history (``tools.audit.chain``) from a data
directory or from nodes' API and writes reports (``tools.audit.report``);
``state`` only recomputes the current state root of a store. Exit codes:
0 everything checks, 1 a divergence or a figure that does not reconcile,
2 the audit could not run (bad genesis, unreadable source).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from node.protocol.crypto import Signer
from node.protocol.genesis import Genesis, GenesisError, parse
from node.protocol.state_tree import StateTree
from node.run import heap
from node.store.blockstore import BlockStore, StoreError
from tools.audit.chain import Auditor, AuditResult
from tools.audit.pdf import render_pdf
from tools.audit.report import reconcile, render_html, render_markdown, to_json
from tools.audit.sources import DataDirSource, HttpSource, SourceError
from wallets.exits import WalletError
from wallets.keystore import Keystore

REPORT_SUFFIXES = (".md", ".html", ".htm", ".pdf")

GenesisOption = click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The genesis file of the chain: the only thing the audit trusts.",
)


@click.group(help="Independent checks of a Relance ledger. Trust nothing but the genesis file.")
@click.version_option(package_name="relance")
def main() -> None:
    pass


@main.command("verify", help="Replay and check the whole history from the genesis file alone.")
@GenesisOption
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A node's data directory (stop the node first, or use --copy).",
)
@click.option(
    "--node", "node_urls", multiple=True, help="A node's API URL (repeat for several nodes)."
)
@click.option(
    "--key",
    "key_name",
    envvar="RELANCE_KEY",
    metavar="NAME",
    help="With --node: the wallet keystore key of an auditor (or the bank), which signs "
    "the API tokens whole blocks need; passphrase from RELANCE_PASSPHRASE or a prompt "
    "[env RELANCE_KEY].",
)
@click.option(
    "--keystore",
    "keystore_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keystore folder [env RELANCE_KEYSTORE; default RELANCE_HOME/keys, ~/.relance/keys].",
)
@click.option("--copy", is_flag=True, help="Audit a temporary copy of --data (node running).")
@click.option("--to-height", type=click.IntRange(min=1), help="Stop after this height.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes checking transaction signatures (default: one per other core; "
    "this process re-executes the history meanwhile).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the treasurer's report here (.md, .html or .pdf).",
)
@click.option("--issuer", help="Limit the report to the commune whose name contains this.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(
    genesis_path: Path,
    data_dir: Path | None,
    node_urls: tuple[str, ...],
    key_name: str | None,
    keystore_dir: Path | None,
    copy: bool,
    to_height: int | None,
    workers: int | None,
    as_json: bool,
    report_path: Path | None,
    issuer: str | None,
    quiet: bool,
) -> None:
    """Examples:

    \b
      relance-audit verify --genesis genesis.toml --data ~/.relance/data
      relance-audit verify --genesis genesis.toml --data DIR --report audit.html
      relance-audit verify --genesis genesis.toml --data DIR --report audit.pdf
      RELANCE_PASSPHRASE=... relance-audit verify --genesis genesis.toml \\
        --node http://127.0.0.1:26601 --node http://127.0.0.1:26602 --key auditor --json
    """
    if (data_dir is None) == (not node_urls):
        _fail("give either --data DIR or --node URL (one or more)")
    if node_urls and key_name is None:
        _fail("--node needs --key NAME: nodes serve whole blocks to auditors and the bank only")
    signer = _unlock(key_name, keystore_dir) if node_urls and key_name is not None else None
    if report_path is not None and report_path.suffix.lower() not in REPORT_SUFFIXES:
        _fail("--report must end in .md, .html or .pdf")
    try:
        genesis = parse(genesis_path.read_text(encoding="utf-8"))
    except (GenesisError, OSError) as exc:
        _fail(f"genesis: {exc}")
    try:
        result = _run(genesis, data_dir, node_urls, signer, copy, to_height, workers, quiet)
    except SourceError as exc:
        _fail(str(exc))
    reconciled = all(c.ok for c in reconcile(result.books))
    if report_path is not None:
        _write_report(report_path, result, issuer)
    if as_json:
        click.echo(json.dumps(to_json(result), ensure_ascii=False))
    else:
        _print_summary(result, reconciled)
    sys.exit(0 if result.ok and reconciled else 1)


def _write_report(path: Path, result: AuditResult, issuer: str | None) -> None:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        path.write_bytes(render_pdf(result, issuer))
    elif suffix in (".html", ".htm"):
        path.write_text(render_html(result, issuer), encoding="utf-8")
    else:
        path.write_text(render_markdown(result, issuer), encoding="utf-8")


def _run(
    genesis: Genesis,
    data_dir: Path | None,
    node_urls: tuple[str, ...],
    signer: Signer | None,
    copy: bool,
    to_height: int | None,
    workers: int | None,
    quiet: bool,
) -> AuditResult:
    source: DataDirSource | HttpSource
    if data_dir is not None:
        source = DataDirSource(data_dir, genesis.genesis_hash, copy)
        stored: DataDirSource | None = source
    else:
        source = HttpSource(node_urls, genesis.genesis_hash, signer)
        stored = None
    try:
        auditor = Auditor(genesis, source, stored, workers=workers or other_cores(), processes=True)
        top = source.top_height() if to_height is None else min(to_height, source.top_height())
        if quiet:
            return auditor.run(to_height)
        with click.progressbar(
            length=top, label="auditing", file=sys.stderr, show_pos=True, show_eta=True
        ) as bar:
            return auditor.run(to_height, bar.update)
    finally:
        source.close()


def _unlock(name: str, keystore_dir: Path | None) -> Signer:
    """The keystore key ``name``, opened as ``relance-wallet login`` opens it."""
    if keystore_dir is None:
        from_env = os.environ.get("RELANCE_KEYSTORE")
        home = Path(os.environ.get("RELANCE_HOME") or "~/.relance").expanduser()
        keystore_dir = Path(from_env).expanduser() if from_env else home / "keys"
    keystore = Keystore(keystore_dir)
    try:
        keystore.info(name)  # a missing key fails before any prompt
        passphrase = os.environ.get("RELANCE_PASSPHRASE")
        if passphrase is None:
            passphrase = click.prompt(f"Passphrase for key {name!r}", hide_input=True, err=True)
        return keystore.open(name, passphrase)
    except WalletError as exc:
        _fail(f"keystore: {exc.format_message()}")
    except click.Abort:
        _fail("no passphrase given (set RELANCE_PASSPHRASE for scripts)")


def _print_summary(result: AuditResult, reconciled: bool) -> None:
    if result.divergence is not None:
        click.echo("FAILED at the first divergence:")
        click.echo(result.divergence.describe())
    elif not reconciled:
        click.echo("FAILED: the figures do not reconcile (see --report or --json)")
    else:
        click.echo("PASSED: every check holds")
    rate = result.transactions / result.seconds if result.seconds else 0.0
    click.echo(
        f"heights {result.heights_checked}/{result.top_height}, "
        f"{result.transactions} transactions, {result.signatures_verified} signatures, "
        f"{result.seconds:.2f} s ({rate:,.0f} tx/s)"
    )
    click.echo(f"last block {result.last_block_hash}")
    click.echo(f"state root {result.state_root}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@main.command("state", help="Recompute the state root of a store and compare it with its record.")
@GenesisOption
@click.argument("store_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def state(genesis_path: Path, store_dir: Path, as_json: bool) -> None:
    """Example: relance-audit state --genesis genesis.toml ~/.relance/data"""
    try:
        genesis = parse(genesis_path.read_text(encoding="utf-8"))
        store = BlockStore.open(store_dir, genesis.genesis_hash, create=False)
    except (GenesisError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        report = check_state_root(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report))
    else:
        verdict = "OK" if report["ok"] else "MISMATCH"
        click.echo(f"height {report['height']}: state root {report['computed']} {verdict}")
    sys.exit(0 if report["ok"] else 1)


def check_state_root(store: BlockStore) -> dict[str, object]:
    """Recompute the root over every stored state entry; compare with the recorded one."""
    height = store.height()
    recorded = store.state_root(height)
    computed = StateTree.from_items(store.state_items()).root()
    return {
        "height": height,
        "recorded": None if recorded is None else recorded.hex(),
        "computed": computed.hex(),
        "ok": recorded == computed,
    }


def other_cores() -> int:
    """Signature workers beside the process that re-executes: one per other core."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def console() -> None:
    """The ``relance-audit`` command: a process of its own, so its heap is tuned first."""
    heap.freeze_loaded()
    main()
