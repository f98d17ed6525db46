"""``relance-node``: run and manage a validator or observer node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from pathlib import Path

import click

from node.devnet import demo as demo_module
from node.devnet import demo_history
from node.devnet import network as devnet
from node.protocol import limits
from node.protocol.crypto import Signer
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisError,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
    parse,
)
from node.run import backup as backup_module
from node.run import config, daemon, logs, statesync
from node.run.ceremony import genesis_group
from node.run.governance_cli import governance_group
from node.run.views_cli import views_group
from node.settlement.cli import settlement_group
from node.store.blockstore import BlockStore, StoreError

HomeOption = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home directory.",
)


@click.group(
    help="Run and manage a Relance node.\n\n"
    "Examples:\n\n"
    "  relance-node devnet --nodes 4 --home .devnet --demo\n\n"
    "  relance-node init --home ~/relance --genesis genesis.toml\n\n"
    "  relance-node start --home ~/relance\n\n"
    "  relance-node views status --home ~/relance"
)
@click.version_option(package_name="relance")
def main() -> None:
    logs.configure(logs.TEXT)


@main.command(help="Create a node home: key, configuration, genesis and an empty store.")
@HomeOption
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The chain's genesis file. Without it, a one-validator chain for trying things out.",
)
@click.option("--moniker", default="relance-node", show_default=True, help="This node's name.")
# The devnet's first node's ports: the wallet's default node address finds either.
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--p2p-port", default=26600, show_default=True, help="Port for other nodes.")
@click.option("--api-port", default=26601, show_default=True, help="Port of the HTTP API.")
@click.option("--observer", is_flag=True, help="Sync and verify only; never vote.")
def init(
    home: Path,
    genesis_path: Path | None,
    moniker: str,
    host: str,
    p2p_port: int,
    api_port: int,
    observer: bool,
) -> None:
    """Example: relance-node init --home ~/relance --genesis genesis.toml"""
    if home.exists() and any(home.iterdir()):
        _fail(f"{home} is not empty; pick a new --home")
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,255}", host):
        _fail(f"--host {host!r} is not a host name or IP address")
    key = Signer.generate()
    if genesis_path is not None:
        try:
            genesis = parse(genesis_path.read_text(encoding="utf-8"))
        except GenesisError as exc:
            _fail(f"{genesis_path}: {exc}")
    else:
        genesis = _solo_genesis(key, home)
    settings = config.NodeConfig(
        moniker=moniker,
        validator=not observer,
        p2p_host=host,
        p2p_port=p2p_port,
        api_host=host,
        api_port=api_port,
        peers=(),
    )
    devnet.init_home(home, settings, genesis, key)
    click.echo(f"home:        {home}")
    click.echo(f"node key:    {key.public_key.hex()}")
    if genesis_path is None:
        click.echo("validator:   export 'relance-node genesis member' for the ceremony")
    click.echo(f"chain id:    {genesis.chain_id}")
    click.echo(f"start with:  relance-node start --home {home}")


def _solo_genesis(key: Signer, home: Path) -> Genesis:
    bank, issuer = Signer.generate(), Signer.generate()
    home.mkdir(parents=True, exist_ok=True)
    accounts = {"bank": bank.seed.hex(), "issuer0": issuer.seed.hex()}
    devnet._write_private(home / devnet.DEMO_KEYS_FILE, json.dumps(accounts, indent=2))
    return Genesis(
        chain_id=f"relance-solo-{int(time.time())}",
        genesis_time_ms=time.time_ns() // 1_000_000,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Bank", bank.public_key),
        validators=(GenesisValidator("solo", "bank", key.public_key, 1),),
        issuers=(GenesisIssuer("Commune", "Commune", issuer.public_key, ("ZONE-1",)),),
        auditors=(),
    )


@main.command(help="Run a node in the foreground until SIGTERM or Ctrl-C.")
@HomeOption
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    help="text, or json: one JSON object per line. Default: [log] format in config.toml.",
)
def start(home: Path, log_format: str | None) -> None:
    """Example: relance-node start --home ~/relance --log-format json"""
    logs.configure(log_format or logs.format_of_home(home))
    sys.exit(daemon.run(home))


@main.command(
    help="Start a new observer home from another node's state at a recent height (state "
    "sync), checked against the genesis and that height's certified header, instead of "
    "replaying every block: then 'relance-node start' follows from there.",
    epilog="\b\nThe home must be new (made by 'relance-node init --observer' with the\n"
    "network's genesis); TOKEN is an auditor's or the bank's API token on the source.\n"
    "Its history, events and analytics start at the synced height.\nExample:\n"
    "  relance-node sync --home ~/relance --from https://node.namur.example "
    '--token "$TOKEN"',
)
@HomeOption
@click.option("--from", "source", required=True, help="The source node's API address.")
@click.option("--token", required=True, envvar="RELANCE_SYNC_TOKEN", help="API token.")
def sync(home: Path, source: str, token: str) -> None:
    try:
        h = daemon.read_home(home)
    except daemon.HomeError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        synced = statesync.fetch_state(h.genesis, statesync.http_fetch(source, token))
        store = BlockStore.open(home / config.DATA_DIR, h.genesis.genesis_hash, create=False)
        try:
            statesync.write_state(store, synced)
        finally:
            store.close()
    except (statesync.SyncError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"synced to height {synced.height} ({len(synced.items)} state entries, state root "
        f"{synced.state_root.hex()}), checked against its certified header"
    )
    click.echo(f"start with:  relance-node start --home {home}")


@main.command(help="Run a local network of validators on 127.0.0.1.")
@click.option("--nodes", default=4, show_default=True, help="Validators: a bank and N-1 communes.")
@HomeOption
@click.option("--demo", is_flag=True, help="Also create demo data and a stream of payments.")
@click.option("--no-start", is_flag=True, help="Only write the homes; start nothing.")
@click.option("--base-port", default=26600, show_default=True, help="First of 2N ports used.")
@click.option("--observers", default=0, show_default=True, help="Non-voting nodes that sync.")
def devnet_command(
    home: Path, nodes: int, demo: bool, no_start: bool, base_port: int, observers: int
) -> None:
    """Example: relance-node devnet --nodes 4 --home .devnet --demo"""
    now_ms = time.time_ns() // 1_000_000
    history: demo_history.History | None = None
    try:
        if (home / "node0").exists():
            members = devnet.node_homes(home)
        elif demo:  # a month of town life, certified, before the nodes start
            started = time.monotonic()
            genesis_ms = demo_history.history_start(now_ms)
            members = devnet.write_devnet(home, nodes, base_port, genesis_ms, observers)
            keys = demo_module.load_keys(home / devnet.DEMO_KEYS_FILE)
            history = demo_history.write_history(home, members, keys, now_ms)
            demo_history.add_role_keys(home, history.demo)
            demo_history.enable_settlement(members[0].home, keys["bank"], history.demo.genesis)
            click.echo(
                f"Demo history: {history.blocks} certified blocks, {history.txs} transactions "
                f"over {(history.last_ms - history.first_ms) / 86_400_000:.1f} days, written "
                f"in {time.monotonic() - started:.1f} s"
            )
        else:
            members = devnet.write_devnet(home, nodes, base_port, now_ms, observers)
    except (devnet.DevnetError, config.ConfigError) as exc:
        _fail(str(exc))
    for node in members:
        click.echo(
            f"{node.name:<22} API {node.api_url}/v1   dashboard {node.api_url}/ui   "
            f"home {node.home}"
        )
    click.echo(
        f"Dashboards open with a token: relance-wallet key import NAME --seed-hex <seed from "
        f"{home / devnet.DEMO_KEYS_FILE}>, then relance-wallet login --key NAME "
        f"--node {members[0].api_url}"
    )
    _print_role_links(home, members, now_ms)
    if no_start:
        return
    supervisor = devnet.Supervisor(members)
    supervisor.start()
    click.echo("Validators started; Ctrl-C stops them all.")
    try:
        asyncio.run(_watch(supervisor, home, members, demo, now_ms, history))
    finally:
        supervisor.stop()
        click.echo("Validators stopped.")


@main.command(help="Back a node home up to one archive, while the node runs or not.")
@HomeOption
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The archive."
)
@click.option(
    "--with-key",
    is_flag=True,
    help="Also the node key and the bank's settlement key: the archive is then secret.",
)
def backup(home: Path, out: Path, with_key: bool) -> None:
    """Example: relance-node backup --home ~/relance --out /backups/relance-2026-12-07.tar"""
    try:
        height = backup_module.backup(home, out, with_key)
    except backup_module.BackupError as exc:
        _fail(str(exc))
    keys = "with the node key" if with_key else "without keys"
    click.echo(f"backup of {home} at height {height}, {keys}: {out}")


@main.command(help="Restore a node home from a backup archive (the node stopped).")
@HomeOption
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Replace the home's store (kept aside as data.replaced-*)."
)
def restore(home: Path, archive: Path, replace: bool) -> None:
    """Example: relance-node restore --home ~/relance /backups/relance-2026-12-07.tar"""
    try:
        manifest = backup_module.restore(archive, home, replace)
    except backup_module.BackupError as exc:
        _fail(str(exc))
    click.echo(f"restored {home} at height {manifest.height} of {manifest.chain_id}")
    click.echo(
        "a validator signs again only once the network is past what it may have signed "
        f"before; start with: relance-node start --home {home}"
    )


main.add_command(devnet_command, name="devnet")
main.add_command(settlement_group)
main.add_command(governance_group)
main.add_command(views_group)
main.add_command(genesis_group)


async def _watch(
    supervisor: devnet.Supervisor,
    home: Path,
    members: list[devnet.DevnetNode],
    demo: bool,
    now_ms: int,
    history: demo_history.History | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = []
    if demo:
        genesis = parse((members[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
        state = (
            demo_module.Demo(
                genesis,
                [m.api_url for m in members],
                demo_module.load_keys(home / devnet.DEMO_KEYS_FILE),
            )
            if history is None
            else history.demo  # the towns go on from where the month left them
        )
        urls = [m.api_url for m in members]
        try:
            await devnet.wait_ready(urls, stop, lambda: not supervisor.exited())
        except devnet.DevnetError as exc:
            click.echo(f"error: {exc}", err=True)
            return
        ready = asyncio.create_task(_say_when_pages_ready(urls, stop, supervisor))
        tasks.append(ready)
        start = demo_module.SIM_START if history is None else demo_history.sim_hour(now_ms)
        tasks.append(asyncio.create_task(demo_module.run_demo(state, stop, now_ms, start)))
    while not stop.is_set():
        if exited := supervisor.exited():
            click.echo(f"A validator exited: {exited}; stopping the devnet.", err=True)
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()
    stop.set()
    for task in tasks:
        with contextlib.suppress(Exception):
            await task


async def _say_when_pages_ready(
    urls: list[str], stop: asyncio.Event, supervisor: devnet.Supervisor
) -> None:
    """Tell the user when every node's views have replayed the history: the pages answer."""
    try:
        await devnet.wait_ready(
            urls,
            stop,
            lambda: not supervisor.exited(),
            limits.DEVNET_PAGES_READY_S_MAX,
            views_serving=True,
        )
    except devnet.DevnetError as exc:
        click.echo(f"warning: {exc} (pages may answer 503 until their views catch up)", err=True)
        return
    if not stop.is_set():
        click.echo("Pages ready: every node's views have caught up with the history.")


def _print_role_links(home: Path, members: list[devnet.DevnetNode], now_ms: int) -> None:
    """Each role's page on node0, with the demo key that opens it (demo devnets only)."""
    keys = demo_module.load_keys(home / devnet.DEMO_KEYS_FILE)
    if demo_history.HOLDER_KEY not in keys:
        return
    genesis = parse((members[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    issuer_key = devnet.issuer_key_names(genesis)[0]
    click.echo(
        f"Each role's page (one-time login links, valid "
        f"{demo_history.LOGIN_TTL_MS // 3_600_000} h; keys in {home / devnet.DEMO_KEYS_FILE}):"
    )
    for link in demo_history.role_links(members[0], genesis, keys, issuer_key, now_ms):
        click.echo(f"  {link.role:<32} key {link.key_name:<10} {link.url}")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
