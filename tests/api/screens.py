"""Where the browser tests save their screenshots.

By default a folder under the system's temporary directory, so that a test run leaves the
work tree as it found it. ``RELANCE_SCREENSHOTS=docs/screenshots make test`` (or any
folder) keeps them: that is how the README's pictures are made, by the tests themselves.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

SCREENSHOTS: Final = Path(
    os.environ.get("RELANCE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "relance-screenshots"
)
