"""Node processes under test control: each started here, each signalled by its own pid.

``python -m tools.faults.node start --home H`` per node (the node's daemon
with the test hooks that entry point reads from its environment), its output
appended to ``H/node.log``, in its own session (a signal to the test runner
does not reach it), with extra environment variables per node (the byzantine
switches, the journal, a view made to raise). Every signal goes to the ``Popen`` this class made:
never a process found by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.protocol.errors import ToolError

TERMINATE_GRACE_S: Final = 10.0
KILL_WAIT_S: Final = 10.0


class ProcessError(ToolError, RuntimeError):
    """A node process is not in the state the caller assumed."""


@dataclass
class _Slot:
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0
    stopping: bool = False  # we killed or terminated it: its exit is expected


class NodeProcesses:
    """One slot per node home; ``start``/``kill``/``pause``/``resume``/``terminate``/``restart``."""

    def __init__(self, homes: Sequence[Path], env: Sequence[Mapping[str, str]]) -> None:
        if len(homes) != len(env):
            raise ValueError("one environment per home")
        self._slots = [_Slot(h, dict(e)) for h, e in zip(homes, env, strict=True)]

    def __len__(self) -> int:
        return len(self._slots)

    def start_all(self) -> None:
        for index in range(len(self._slots)):
            self.start(index)

    def start(self, index: int) -> None:
        slot = self._slots[index]
        if slot.proc is not None and slot.proc.poll() is None:
            raise ProcessError(f"node {index} is already running")
        with (slot.home / "node.log").open("ab") as log:
            slot.proc = subprocess.Popen(
                [sys.executable, "-m", "tools.faults.node", "start", "--home", str(slot.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **slot.env},
            )
        slot.paused = False
        slot.stopping = False
        slot.starts += 1

    def pid(self, index: int) -> int | None:
        proc = self._slots[index].proc
        return None if proc is None else proc.pid

    def is_running(self, index: int) -> bool:
        proc = self._slots[index].proc
        return proc is not None and proc.poll() is None

    def is_paused(self, index: int) -> bool:
        return self._slots[index].paused

    def exit_code(self, index: int) -> int | None:
        proc = self._slots[index].proc
        return None if proc is None else proc.poll()

    def starts(self, index: int) -> int:
        return self._slots[index].starts

    def crashed(self) -> list[int]:
        """Nodes that exited without being told to (a crash, a refusal to start)."""
        return [
            i
            for i, slot in enumerate(self._slots)
            if slot.proc is not None and slot.proc.poll() is not None and not slot.stopping
        ]

    def _running(self, index: int) -> subprocess.Popen[bytes]:
        proc = self._slots[index].proc
        if proc is None or proc.poll() is not None:
            raise ProcessError(f"node {index} is not running")
        return proc

    def kill(self, index: int) -> None:
        """SIGKILL: no clean-up at all, as a power cut to the process."""
        proc = self._running(index)
        self._slots[index].stopping = True
        proc.send_signal(signal.SIGKILL)
        proc.wait(KILL_WAIT_S)
        self._slots[index].paused = False

    def pause(self, index: int) -> None:
        """SIGSTOP: the process keeps its sockets but runs nothing (a long GC, a VM stall)."""
        self._running(index).send_signal(signal.SIGSTOP)
        self._slots[index].paused = True

    def resume(self, index: int) -> None:
        """SIGCONT."""
        self._running(index).send_signal(signal.SIGCONT)
        self._slots[index].paused = False

    def terminate(self, index: int) -> int:
        """SIGTERM (after SIGCONT if paused), then SIGKILL past the grace period; the exit code."""
        slot = self._slots[index]
        proc = slot.proc
        if proc is None:
            raise ProcessError(f"node {index} was never started")
        if proc.poll() is None:
            slot.stopping = True
            if slot.paused:
                proc.send_signal(signal.SIGCONT)
                slot.paused = False
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(KILL_WAIT_S)
        code = proc.poll()
        if code is None:
            raise ProcessError(f"node {index} did not exit")
        return code

    def set_env(self, index: int, env: Mapping[str, str]) -> None:
        """The test switches of node ``index`` from its next start on (an upgrade in place)."""
        self._slots[index].env = dict(env)

    def restart(self, index: int) -> None:
        if self.is_running(index):
            raise ProcessError(f"node {index} is still running")
        self.start(index)

    def stop_all(self) -> dict[int, int]:
        """Terminate every started node (all signalled first, then each waited for)."""
        for slot in self._slots:
            proc = slot.proc
            if proc is not None and proc.poll() is None:
                slot.stopping = True
                if slot.paused:
                    proc.send_signal(signal.SIGCONT)
                    slot.paused = False
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_S
        codes: dict[int, int] = {}
        for index, slot in enumerate(self._slots):
            proc = slot.proc
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(KILL_WAIT_S)
            codes[index] = proc.returncode
        return codes
