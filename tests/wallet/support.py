"""Helpers for the wallet tests: run the CLI in-process or as a real process, decode
QR codes with the real decoder, and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner, Result

from wallets.cli import main

PASSPHRASE = "correct horse battery staple"


def tool(name: str) -> str:
    """A Debian tool the tests need (installed by `make system-tools`)."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is missing: run `make system-tools` (Debian packages)")
    return path


def zbar(path: Path) -> list[str]:
    done = subprocess.run(
        [tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return [line for line in done.stdout.decode().splitlines() if line]


def pdf_to_png(pdf: Path, out_prefix: Path, dpi: int = 150) -> list[Path]:
    subprocess.run(
        [tool("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(out_prefix)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return sorted(out_prefix.parent.glob(out_prefix.name + "*.png"))


def pdf_text(pdf: Path) -> str:
    done = subprocess.run(
        [tool("pdftotext"), "-layout", str(pdf), "-"],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return done.stdout.decode()


@dataclass
class Cli:
    """Runs ``relance-wallet`` in-process (click's runner) with an isolated environment."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Result:
        runner = CliRunner()
        result = runner.invoke(main, list(args), env={**self.env, **env}, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def ok(self, *args: str, **env: str) -> Result:
        result = self(*args, **env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **env: str) -> dict[str, object]:
        result = self.ok("--json", *args, **env)
        body: dict[str, object] = json.loads(result.stdout)
        assert body["ok"] is True
        return body

    def process(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        """The real console script in its own process."""
        return subprocess.run(
            [sys.executable, "-c", "from wallets.cli import main; main()", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **self.env, **env},
            check=False,
        )


def cli_env(home: Path, node: str = "http://127.0.0.1:9") -> dict[str, str]:
    return {
        "RELANCE_HOME": str(home),
        "RELANCE_NODE": node,
        "RELANCE_PASSPHRASE": PASSPHRASE,
        "RELANCE_KEYSTORE": "",
        "RELANCE_KEY": "",
    }


# --- a real SMTP server -------------------------------------------------------------------------


@dataclass
class Inbox:
    """What the test SMTP server received; addresses in ``refuse`` get a 550."""

    refuse: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        if not isinstance(message, EmailMessage):
            return "554 not a message"
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


def start_smtp(inbox: Inbox, port: int) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def env_without(env: Mapping[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}
