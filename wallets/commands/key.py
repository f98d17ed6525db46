"""``relance-wallet key``: create, import, list and show keys of the keystore."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from node.protocol.crypto import SEED_BYTES, Signer
from node.run import membership
from wallets import keystore as ks
from wallets.context import common_options, emit, note, passphrase, settings, unlock
from wallets.exits import Exit, WalletError
from wallets.keystore import write_atomic
from wallets.voucher import qr_png, qr_text, seal_key

LANGUAGE = click.Choice(sorted(ks.LANGUAGES))


@click.group(
    "key",
    help="Keys in the encrypted keystore (Argon2id + XSalsa20-Poly1305, files mode 0600).",
)
@common_options
def key_group() -> None:
    pass


@key_group.command(
    "new",
    epilog="""\b
Examples:
  relance-wallet key new alice
  relance-wallet key new boulangerie --phrase-language fr
  RELANCE_PASSPHRASE=... relance-wallet key new bank --no-phrase --json""",
)
@click.argument("name")
@click.option(
    "--phrase-language",
    type=LANGUAGE,
    default="en",
    show_default=True,
    help="Language of the 24-word recovery phrase.",
)
@click.option("--no-phrase", is_flag=True, help="Do not print the recovery phrase.")
@common_options
def key_new(name: str, phrase_language: str, no_phrase: bool) -> None:
    """Create a new key, sealed with a passphrase; print its public key and recovery phrase."""
    store = settings().keystore()
    store.path(name)  # validates the name before asking anything
    if store.path(name).exists():
        raise WalletError(Exit.USAGE, f"a key named {name!r} already exists")
    signer = Signer.generate()
    info = store.add(name, signer, passphrase(f"new key {name!r}", new=True))
    phrase = None if no_phrase else ks.to_phrase(signer.seed, phrase_language)
    lines = [f"key {name!r} created in {info.path}", f"public key  {info.public_key.hex()}"]
    if phrase is not None:
        lines += [
            "",
            "Recovery phrase: write these 24 words on paper and keep them safe.",
            "Anyone who has them can spend with this key.",
            "",
            phrase,
        ]
    data: dict[str, object] = {"name": name, "public_key": info.public_key.hex()}
    data["path"] = str(info.path)
    if phrase is not None:
        data["recovery_phrase"] = phrase
    emit(data, lines)


@key_group.command(
    "import",
    epilog="""\b
Examples:
  relance-wallet key import alice --phrase          (asks for the 24 words)
  relance-wallet key import bank --seed-hex 9f1c...  (64 hex digits; '-' reads stdin)""",
)
@click.argument("name")
@click.option(
    "--seed-hex",
    metavar="HEX",
    help="The 32-byte seed in hex, or '-' to read it from stdin (safer: not in the process list).",
)
@click.option("--phrase", "from_phrase", is_flag=True, help="Type the recovery phrase.")
@click.option("--phrase-language", type=LANGUAGE, help="Language of the phrase (else detected).")
@click.option("--replace", is_flag=True, help="Overwrite a key with the same name.")
@common_options
def key_import(
    name: str, seed_hex: str | None, from_phrase: bool, phrase_language: str | None, replace: bool
) -> None:
    """Import a key from its recovery phrase or its seed."""
    if (seed_hex is None) == (not from_phrase):
        raise WalletError(Exit.USAGE, "give exactly one of --seed-hex or --phrase")
    store = settings().keystore()
    store.path(name)
    if seed_hex is not None:
        text = sys.stdin.readline() if seed_hex == "-" else seed_hex
        try:
            seed = bytes.fromhex(text.strip())
        except ValueError:
            seed = b""
        if len(seed) != SEED_BYTES:
            raise WalletError(Exit.USAGE, "a seed is 64 hex digits")
    else:
        words = click.prompt("Recovery phrase (24 words)", err=True, hide_input=False)
        seed = ks.from_phrase(words, phrase_language)
    signer = Signer(seed)
    info = store.add(name, signer, passphrase(f"new key {name!r}", new=True), replace=replace)
    emit(
        {"name": name, "public_key": info.public_key.hex(), "path": str(info.path)},
        [f"key {name!r} imported", f"public key  {info.public_key.hex()}"],
    )


@key_group.command(
    "list",
    epilog="""\b
Examples:
  relance-wallet key list
  relance-wallet key list --json --keystore ./keys""",
)
@common_options
def key_list() -> None:
    """List the keystore's keys (no passphrase needed)."""
    infos = settings().keystore().list()
    rows = [{"name": i.name, "public_key": i.public_key.hex(), "created": i.created} for i in infos]
    human = [f"{i.name:<24} {i.public_key.hex()}  {i.created}" for i in infos]
    if not infos:
        note(f"no keys in {settings().keystore_dir}")
    emit({"keys": rows}, human)


@key_group.command(
    "show",
    epilog="""\b
Examples:
  relance-wallet key show alice
  relance-wallet key show alice --phrase fr      (asks the passphrase)
  relance-wallet key show shop --seed           (for the counter page: asks the passphrase)""",
)
@click.argument("name")
@click.option("--phrase", "phrase_language", type=LANGUAGE, help="Also print the recovery phrase.")
@click.option(
    "--seed",
    "show_seed",
    is_flag=True,
    help="Also print the 32-byte seed in hex (to keep a shop's key on its counter phone).",
)
@common_options
def key_show(name: str, phrase_language: str | None, show_seed: bool) -> None:
    """Print a key's public key (and, after the passphrase, its recovery phrase or seed)."""
    info = settings().keystore().info(name)
    data: dict[str, object] = {"name": name, "public_key": info.public_key.hex()}
    lines = [info.public_key.hex()]
    if phrase_language is not None or show_seed:
        signer = unlock(name)
        if phrase_language is not None:
            phrase = ks.to_phrase(signer.seed, phrase_language)
            data["recovery_phrase"] = phrase
            lines.append(phrase)
        if show_seed:
            data["seed_hex"] = signer.seed.hex()
            lines.append(signer.seed.hex())
    emit(data, lines)


@key_group.command(
    "export",
    epilog="""\b
For the counter page (/ui/merchant/counter, "Shop key on this phone"): the phone
scans the QR code (or the text is typed), then the one-time code printed beside
it opens the key, which the page seals again under the passphrase you choose there.
The QR holds the seed sealed under the code (PBKDF2-SHA-256, XSalsa20-Poly1305):
a photo or a copy of the QR alone does not give the key; show the code only to the
phone. Each export makes a new code.
Examples:
  relance-wallet key export shop --qr
  relance-wallet key export shop --png shop-key.png""",
)
@click.argument("name")
@click.option("--qr", "show_qr", is_flag=True, help="Draw the QR code in the terminal.")
@click.option(
    "--png",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the QR code to this PNG file (mode 0600).",
)
@click.option("--chain", "chain_id", help="The chain's id (default: asked of the node).")
@common_options
def key_export(name: str, show_qr: bool, png: Path | None, chain_id: str | None) -> None:
    """Export a key sealed under a one-time code, for the merchant's counter phone."""
    if chain_id is None:
        chain_id = settings().client().chain_id()
    signer = unlock(name)
    sealed, code = seal_key(signer.seed, chain_id)
    uri = sealed.uri()
    if png is not None:
        write_atomic(png, qr_png(uri))
    lines = [f"{name}: {signer.public_key.hex()}", f"sealed key  {uri}"]
    if show_qr:
        lines.append(qr_text(uri))
    lines.append(f"one-time code  {code}   (type it on the phone; it is not in the QR code)")
    emit(
        {
            "name": name,
            "public_key": signer.public_key.hex(),
            "sealed_key": uri,
            "code": code,
            "png": None if png is None else str(png),
        },
        lines,
    )


@key_group.command(
    "sign-member",
    epilog="""\b
The genesis ceremony: the node key signed the file ('relance-node genesis member');
this adds the signature of the account key it names (the bank's account or the
commune's issuer key), proving the organisation holds it. The secret stays here.
Examples:
  relance-wallet key sign-member namur namur.json
  relance-wallet key sign-member bank bank.json --yes""",
)
@click.argument("name")
@click.argument("member_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common_options
def key_sign_member(name: str, member_file: Path) -> None:
    """Sign a genesis membership file with this account key."""
    try:
        signed = membership.read(member_file)
    except membership.MemberError as exc:
        raise WalletError(Exit.USAGE, str(exc)) from None
    account = signed.member.account
    info = settings().keystore().info(name)
    if account is None or account.public_key != info.public_key:
        named = "no account key" if account is None else f"account key {account.public_key.hex()}"
        raise WalletError(
            Exit.USAGE, f"{member_file} names {named}, not {name!r} ({info.public_key.hex()})"
        )
    if not settings().yes:
        click.echo("\n".join(signed.member.describe()), err=True)
        try:
            agreed = click.confirm(f"Sign this membership with {name!r}?", default=False, err=True)
        except click.Abort:
            agreed = False
        if not agreed:
            raise WalletError(Exit.ABORTED, "not signed: confirmation declined (--yes for scripts)")
    try:
        signed = signed.signed_by_account(unlock(name))
    except membership.MemberError as exc:
        raise WalletError(Exit.USAGE, str(exc)) from None
    mode = member_file.stat().st_mode & 0o777
    ks.write_atomic(member_file, membership.dumps(signed).encode(), mode)
    emit(
        {"member_file": str(member_file), "public_key": info.public_key.hex()},
        f"signed {member_file} with {name!r}: send it to the coordinator",
    )
