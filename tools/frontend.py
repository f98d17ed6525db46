"""The counter page's front-end files: ``npm ci`` (pinned by package-lock.json), then the
files the page serves are copied into ``node/api/static/vendor`` (not kept in git).

    python -m tools.frontend          # npm ci when the lock changed, then copy

``make run`` and ``make test`` run it; nothing is downloaded from anywhere but the npm
registry, through npm itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
MODULES: Final = ROOT / "node_modules"
VENDOR: Final = ROOT / "node" / "api" / "static" / "vendor"
STAMP: Final = MODULES / ".relance-installed"
NPM_TIMEOUT_S: Final = 300
# package file -> the name the page loads it by (/ui/static/vendor/<name>)
SERVED: Final = {
    "jsqr/dist/jsQR.js": "jsQR.js",
    "tweetnacl/nacl-fast.min.js": "nacl-fast.min.js",
}
LICENSES: Final = {"jsqr/LICENSE": "jsQR.LICENSE.txt", "tweetnacl/LICENSE": "tweetnacl.LICENSE.txt"}
AXE: Final = MODULES / "axe-core" / "axe.min.js"  # the browser tests' checker (dev only)


def installed() -> bool:
    lock = ROOT / "package-lock.json"
    return STAMP.is_file() and STAMP.read_bytes() == lock.read_bytes()


def npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is missing: install Node.js and npm (Debian: apt-get install npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=ROOT,
        check=True,
        timeout=NPM_TIMEOUT_S,
    )
    STAMP.write_bytes((ROOT / "package-lock.json").read_bytes())


def copy() -> list[Path]:
    VENDOR.mkdir(parents=True, exist_ok=True)
    out = []
    for source, name in {**SERVED, **LICENSES}.items():
        target = VENDOR / name
        shutil.copyfile(MODULES / source, target)
        out.append(target)
    return out


def up_to_date() -> bool:
    """True when every served file is in place and equal to the pinned package's."""
    return all(
        (VENDOR / name).is_file()
        and (MODULES / source).is_file()
        and (VENDOR / name).read_bytes() == (MODULES / source).read_bytes()
        for source, name in SERVED.items()
    )


def main() -> None:
    if not installed():
        npm_ci()
    for path in copy():
        print(f"front-end: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
