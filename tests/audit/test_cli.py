"""``relance-audit verify``: exit codes, JSON, the treasurer's reports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import plyvel
from click.testing import CliRunner

from tests.audit.conftest import History, edit, height_key
from tools.audit.cli import main
from tools.audit.report import money


def _verify(history: History, *extra: str) -> tuple[int, str, str]:
    runner = CliRunner()
    args = ["verify", "--genesis", str(history.genesis_file), "--data", str(history.data)]
    result = runner.invoke(main, [*args, *extra])
    return result.exit_code, result.stdout, result.stderr


def test_a_good_history_passes_with_json_and_reports(history: History, tmp_path: Path) -> None:
    md, html = tmp_path / "audit.md", tmp_path / "audit.html"
    code, out, err = _verify(history, "--json", "--report", str(md))
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] is True
    assert report["heights_checked"] == 12
    assert report["divergence"] is None
    assert all(c["ok"] for c in report["reconciliation"])
    namur = next(c for c in report["campaigns"] if c["code"] == "namur-2026")
    assert namur["funded"] == 100_000
    assert namur["unspent"] + namur["spent"] - namur["refunded"] + namur["withdrawn"] == 100_000
    assert "auditing" in err  # the progress bar goes to stderr
    text = md.read_text(encoding="utf-8")
    assert "PASSED" in text and "Reconciliation (to the cent)" in text and "❌" not in text

    code, out, _ = _verify(history, "--quiet", "--report", str(html), "--issuer", "Liège")
    assert code == 0
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "Ville de Liège" in page and "namur-2026" not in page
    assert out.startswith("PASSED")


def test_a_tampered_history_fails_with_the_place(history: History) -> None:
    edit(history.data, lambda db: db.delete(height_key(b"c/", 3)))
    code, out, _ = _verify(history, "--quiet")
    assert code == 1
    assert "height 3: [certificate_missing]" in out

    code, out, _ = _verify(history, "--quiet", "--json")
    assert code == 1
    assert json.loads(out)["divergence"]["height"] == 3


def test_usage_errors_exit_2(history: History, tmp_path: Path) -> None:
    code, _, err = _verify(history, "--node", "http://127.0.0.1:9")
    assert code == 2 and "either --data" in err
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        main, ["verify", "--genesis", str(history.genesis_file), "--data", str(empty)]
    )
    assert result.exit_code == 2
    assert "not a node's data directory" in result.stderr


def test_a_running_node_s_lock_is_explained_and_copy_works(history: History) -> None:
    db = plyvel.DB(str(history.data))  # stands for a running node holding the lock
    try:
        code, _, err = _verify(history, "--quiet")
        assert code == 2 and "--copy" in err
        code, out, _ = _verify(history, "--quiet", "--copy")
        assert code == 0, out
    finally:
        db.close()


def _pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode("utf-8")


def test_the_pdf_report_has_the_same_figures_and_verdict(history: History, tmp_path: Path) -> None:
    pdf = tmp_path / "audit.pdf"
    code, out, err = _verify(history, "--json", "--quiet", "--report", str(pdf))
    assert code == 0, err
    report = json.loads(out)
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = _pdf_text(pdf)
    assert "PASSED: every check holds" in text
    assert "Reconciliation (to the cent)" in text and "MISMATCH" not in text
    assert "Ville de Liège" in text and "€" in text  # the embedded font prints both
    for campaign in report["campaigns"]:
        assert f"{campaign['code']} ({campaign['name']})" in text
        for field in ("funded", "allocated", "spent", "refunded", "withdrawn", "unspent"):
            assert money(campaign[field]) in text, (campaign["code"], field)
    for check in report["reconciliation"]:
        assert check["name"] in text
    assert b"FontFile2" in pdf.read_bytes()  # a TrueType font, embedded

    edit(history.data, lambda db: db.delete(height_key(b"c/", 3)))
    code, _, _ = _verify(history, "--quiet", "--report", str(pdf))
    assert code == 1
    text = _pdf_text(pdf)
    assert "FAILED: the history does not verify" in text and "certificate_missing" in text
