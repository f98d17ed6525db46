"""The views' control files in the node's home (``node/views/control.py``): the node
never writes through a symlink left where its temporary status file goes. (Nothing over
HTTP starts a rebuild: only a request file in the home, which is the operator's.)"""

from __future__ import annotations

import json
from pathlib import Path

from node.views import control
from node.views.base import ViewState, ViewStatus


def _status() -> dict[str, object]:
    view = ViewStatus("history", ViewState.SERVING, 3, 0, 0, None, None, None)
    return control.status_document([view], 1, 2, {})


def test_the_status_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere.toml"
    victim.write_text("keep me\n", encoding="utf-8")
    status = control.status_path(tmp_path)
    status.parent.mkdir(parents=True)
    status.with_suffix(".tmp").symlink_to(victim)
    control.write_status(tmp_path, _status())
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not status.is_symlink()
    assert json.loads(status.read_text(encoding="utf-8"))["pid"] == 1
    assert control.read_status(tmp_path) == _status()
