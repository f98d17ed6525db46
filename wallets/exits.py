"""Exit codes of ``relance-wallet`` and the one error type that carries them.

The numbers are an interface for scripts: never renumber, add at the end.
Every expected failure becomes a ``WalletError``: one line on stderr (or one
JSON object on stdout with ``--json``) and its exit code, never a traceback.
"""

from __future__ import annotations

import enum
import json

import click

from node.protocol.errors import WalletProblem


class Exit(enum.IntEnum):
    OK = 0
    REJECTED = 1  # the ledger refused the transaction (the result code is printed)
    USAGE = 2  # bad arguments or input (click's own usage errors are 2 as well)
    UNREACHABLE = 3  # the node did not answer, or answered something unexpected
    KEYSTORE = 4  # wrong passphrase, unknown key, damaged keystore or voucher book
    PARTIAL = 5  # a batch where some items failed (the report lists them)
    PENDING = 6  # accepted by the node but not in a block within the wait
    ABORTED = 7  # the user declined the confirmation
    UNSUPPORTED = 8  # the node does not offer this route yet


class WalletError(click.ClickException, WalletProblem):
    """An expected failure: a one-line message and a stable exit code."""

    def __init__(self, code: Exit, message: str, result: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = int(code)  # type: ignore[misc]  # click reads it per instance
        self.code = code
        self.result = result
        self.as_json = False
        self.shown = False  # already reported inside a command's own JSON output

    def format_message(self) -> str:
        return self.message if self.result is None else f"{self.result}: {self.message}"

    def fields(self) -> dict[str, object]:
        return {
            "ok": False,
            "exit_code": self.exit_code,
            "error": self.code.name.lower(),
            "result": self.result,
            "message": self.message,
        }

    def show(self, file: object = None) -> None:
        if self.shown:
            return
        if self.as_json:
            click.echo(json.dumps(self.fields(), ensure_ascii=False))
            return
        click.echo(f"error: {self.format_message()}", err=True)
