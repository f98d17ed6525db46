"""Logs a machine can read: ``--log-format json`` or ``[log] format``, one JSON object a line."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from node.run import config, logs
from tests.node.netutil import eventually, free_base_port, get_json

BIN = Path(sys.executable).parent
RUN_S = 60


def _relance_node() -> str:
    path = shutil.which("relance-node", path=str(BIN))
    assert path is not None
    return path


def _init(home: Path) -> str:
    """A one-validator home on free ports; returns its API URL."""
    base = free_base_port(2)
    done = subprocess.run(
        [_relance_node(), "init", "--home", str(home), "--p2p-port", str(base),
         "--api-port", str(base + 1)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return f"http://127.0.0.1:{base + 1}"


def _run_until(home: Path, log: Path, ready: Callable[[], object], *options: str) -> list[str]:
    """Start the node, wait for ``ready()``, stop it with SIGTERM; its stderr lines."""
    with log.open("w") as err:
        process = subprocess.Popen(
            [_relance_node(), "start", "--home", str(home), *options],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            eventually(ready, RUN_S, "the node")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=RUN_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert process.returncode == 0, log.read_text()
    return log.read_text(encoding="utf-8").splitlines()


def test_a_node_started_with_json_logs_writes_json_lines_with_heights(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api = _init(home)

    def two_blocks() -> bool | None:
        height = get_json(api + "/v1/status")["height"]
        return True if isinstance(height, int) and height >= 2 else None

    lines = _run_until(home, tmp_path / "err", two_blocks, "--log-format", "json")
    records = [json.loads(line) for line in lines]  # every line parses
    assert records and all(isinstance(r, dict) for r in records)
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert record["time"].endswith("Z") and record["level"] in ("info", "warning", "error")
    consensus = [r for r in records if r["logger"].startswith("node.consensus")]
    assert consensus, records
    for record in consensus:
        assert isinstance(record["height"], int) and record["height"] >= 1, record
    assert any(r["message"].startswith("consensus starts at height 1") for r in consensus)
    assert any("stopped at height" in r["message"] for r in records)


def test_the_config_file_chooses_json_and_the_option_overrides_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api = _init(home)
    path = home / config.CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    assert "[log]\n# text or json" in text and 'format = "text"' in text
    path.write_text(text.replace('format = "text"', 'format = "json"'), encoding="utf-8")
    assert config.parse(path.read_text(encoding="utf-8")).log_format == "json"

    def up() -> bool:
        return get_json(api + "/v1/health")["ok"] is True

    lines = _run_until(home, tmp_path / "json", up)
    assert lines and all(json.loads(line)["message"] for line in lines)
    lines = _run_until(home, tmp_path / "text", up, "--log-format", "text")
    assert lines and all(not line.startswith("{") for line in lines)
    assert any(" INFO node.consensus.driver: consensus starts at height" in x for x in lines)


def test_json_lines_keep_user_strings_as_data_and_carry_the_structured_fields() -> None:
    record = logging.LogRecord(
        "node.p2p.peers", logging.WARNING, __file__, 1, 'peer "%s"\n{"level": "x"}', ("a\nb",),
        None,
    )  # fmt: skip
    record.__dict__.update({"height": 7, "round": 2, "peer": "ab" * 32, "ignored": "x"})
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == 'peer "a\nb"\n{"level": "x"}'
    assert parsed["level"] == "warning" and parsed["logger"] == "node.p2p.peers"
    assert (parsed["height"], parsed["round"], parsed["peer"]) == (7, 2, "ab" * 32)
    assert "ignored" not in parsed


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ('[log]\nformat = "xml"', "log.format must be one of 'text', 'json'"),
        ("[log]\nformat = 1", "log.format must be one of"),
        ('[log]\nlevel = "debug"', "log has only format"),
        ('log = "json"', "log must be a table"),
    ],
)
def test_a_bad_log_section_is_refused(section: str, error: str) -> None:
    settings = config.NodeConfig("n", True, "127.0.0.1", 1, "127.0.0.1", 2, ())
    text = config.render(settings).split("[log]")[0]
    if not section.startswith("["):
        text = section + "\n" + text
        section = ""
    with pytest.raises(config.ConfigError, match=error):
        config.parse(text + section)


def test_an_unreadable_home_logs_in_text() -> None:
    assert logs.format_of_home(Path("/nonexistent/relance-home")) == logs.TEXT


def test_configure_leaves_a_capturing_handler_alone_and_never_doubles_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.configure(logs.JSON)  # pytest's handlers are in place: the log stays theirs
    assert root.handlers == before
    logging.getLogger("node.test").warning("still captured")
    assert "still captured" in caplog.text
    for handler in before:
        root.removeHandler(handler)
    try:
        logs.configure(logs.TEXT)
        [text] = root.handlers
        assert isinstance(text.formatter, logs.TextFormatter)  # escapes what users wrote
        logs.configure(logs.JSON)
        [ours] = root.handlers
        assert isinstance(ours.formatter, logs.JsonFormatter)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
        root.setLevel(level)
