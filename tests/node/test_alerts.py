"""The Prometheus alert rules: promtool checks them and runs their unit tests, every alert
is tested firing, and the rules use only metrics a node exports (or names outside sources)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from node.api.metrics import NodeMetrics, SettlementSources, ValidatorSources
from node.consensus.types import Validator, ValidatorSet

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "configs" / "alerts.yml"
RULE_TESTS = ROOT / "configs" / "alerts.test.yml"
# Used by the rules, exported elsewhere: the derived views' runner (node.views, issue 14),
# and the TLS listener (not built yet: the rule waits for it).
ELSEWHERE = {"relance_view_failures", "relance_view_lag_blocks"}
NOT_YET = {"relance_tls_certificate_expiry_seconds"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by 'make test' (Debian's prometheus)"
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in checked.stdout
    tested = _promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_of_the_issue_is_there_and_tested_firing() -> None:
    alerts = _alerts()
    assert set(alerts) == {
        "RelanceNoNewBlock",
        "RelanceNodeDown",
        "RelanceValidatorUnreachable",
        "RelancePeersBelowQuorum",
        "RelanceDiskFilling",
        "RelanceViewFailed",
        "RelanceViewLagging",
        "RelanceSettlementStuck",
        "RelanceCertificateExpiring",
    }
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    assert fired == set(alerts), set(alerts) - fired
    assert quiet >= set(alerts) - {"RelanceCertificateExpiring"}, set(alerts) - quiet


def test_the_rules_use_only_metrics_the_node_exports() -> None:
    metrics = NodeMetrics()
    key = bytes(range(32))
    metrics.attach_validators(
        ValidatorSources(key, lambda: ValidatorSet((Validator(key, 1, "v"),)), frozenset)
    )
    metrics.attach_settlement(SettlementSources(lambda: None, dict))
    served = {
        line.split(" ")[2]
        for line in metrics.render().decode().splitlines()
        if line.startswith("# TYPE ")
    }
    used = {name for expr in _alerts().values() for name in re.findall(r"relance_\w+", expr)}
    bases = {name.removesuffix("_total") for name in used}
    assert bases <= served | ELSEWHERE | NOT_YET, bases - served - ELSEWHERE - NOT_YET
    assert not NOT_YET & served, "exported now: move it out of NOT_YET"
