"""``relance-wallet login``: a short-lived dashboard token signed with the account's key."""

from __future__ import annotations

import time
import urllib.parse

import click

from node.api import tokens
from node.protocol import limits
from wallets.context import common_options, emit, key_option, settings, unlock
from wallets.exits import Exit, WalletError
from wallets.units import format_time

TTL_DEFAULT_MIN = 60


@click.command(
    "login",
    epilog="""\b
The link opens the dashboard of your role once (the node then keeps you
logged in with a session of its own); the token, a different one, works with
'Authorization: Bearer <token>' on the API until it expires. The link is
not an API token, and an API token pasted into the login page is spent.
Examples:
  relance-wallet login --key namur
  relance-wallet login --key shop --ttl 480 --node http://127.0.0.1:26603 --json""",
)
@click.option(
    "--ttl",
    "ttl_min",
    default=TTL_DEFAULT_MIN,
    show_default=True,
    type=click.IntRange(1, limits.API_TOKEN_TTL_MAX_MS // 60_000),
    help="Minutes the token lives.",
)
@key_option
@common_options
def login_command(ttl_min: int, key_name: str) -> None:
    """Print a dashboard link and an API token for this node."""
    client = settings().client()
    signer = unlock(key_name)
    chain_id = client.chain_id()
    node_key = client.node_key()
    now_ms = time.time_ns() // 1_000_000
    ttl_ms = ttl_min * 60_000
    try:
        token = tokens.make_token(signer, chain_id, node_key, now_ms, ttl_ms)
        once = tokens.make_token(signer, chain_id, node_key, now_ms, ttl_ms, tokens.LINK_KIND)
    except ValueError as error:
        raise WalletError(Exit.USAGE, str(error)) from None
    link = f"{client.url}/ui/login?{urllib.parse.urlencode({'token': once})}"
    expires = now_ms + ttl_ms
    emit(
        {"token": token, "link": link, "expires_ms": expires, "node_key": node_key.hex()},
        [f"dashboard  {link}", f"token      {token}", f"expires    {format_time(expires)}"],
    )
