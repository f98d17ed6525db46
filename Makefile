# Two commands matter: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck unit unit-fast clean system-deps system-tools soak frontend

# Debian tools the wallet tests use for real: a QR decoder (zbarimg), PDF to text and to PNG
# (poppler), the DejaVu font letters embed, openssl for a test certificate (SMTP STARTTLS).
# Installs only what is missing (as root).
SYSTEM_PACKAGES := zbar-tools poppler-utils fonts-dejavu-core openssl

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The counter page's front-end packages (jsQR, tweetnacl; axe-core for the tests), pinned
# by package-lock.json, installed by npm ci and copied into node/api/static/vendor.
frontend: $(STAMP)
	$(BIN)/python -m tools.frontend

run: $(STAMP) frontend
	$(BIN)/relance-node devnet --nodes 4 --home .devnet --demo

lint: $(STAMP)
	$(BIN)/ruff check node wallets tools tests
	$(BIN)/ruff format --check node wallets tools tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

system-tools:
	@if command -v zbarimg >/dev/null && command -v pdftoppm >/dev/null \
		&& command -v pdftotext >/dev/null && command -v openssl >/dev/null \
		&& [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then :; else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); fi

# Debian tools the API and operations tests drive: promtool (checks /metrics and the alert
# rules), chromium (Playwright drives it; no browser is ever downloaded) and systemd-analyze
# (verifies the service unit), nginx (runs the documented reverse proxy on 127.0.0.1).
# Installs only what is missing (as root).
system-deps:
	@if command -v promtool >/dev/null && [ -x /usr/bin/chromium ] \
		&& command -v systemd-analyze >/dev/null && [ -x /usr/sbin/nginx ]; then :; else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq prometheus chromium systemd nginx; fi

unit: $(STAMP) system-tools system-deps frontend
	$(BIN)/pytest -q --durations=20

test: lint typecheck unit

# For development: every test but those marked slow (devnets, fault scenarios, browsers).
unit-fast: $(STAMP) system-tools system-deps frontend
	$(BIN)/pytest -q -m "not slow"

test-fast: lint typecheck unit-fast

# Nightly-style, not in CI: 5 minutes of validators SIGKILLed and restarted under a client
# workload, then every checker and an audit of each node (tools/faults). SEED=n replays.
SEED ?= 1
soak: $(STAMP)
	$(BIN)/python -m tools.faults run repeated-kills --duration 300 --seed $(SEED)

clean:
	rm -rf $(VENV) .devnet node_modules node/api/static/vendor
