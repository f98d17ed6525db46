"""Exports and the OpenAPI document: every aggregate has a documented route."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from node.api.routes.analytics import ANALYTICS_OPERATIONS
from tests.analytics.conftest import History
from tests.api.harness import AUDITOR, NAMUR
from wallets.analytics_report import write_pdf
from wallets.cli import main as wallet_main


def test_every_analytics_route_is_in_the_openapi_document(history: History) -> None:
    document = history.node.get("/v1/openapi.json").json()
    paths = document["paths"]
    assert isinstance(paths, dict)
    for op in ANALYTICS_OPERATIONS:
        assert op.path in paths, op.path
        assert paths[op.path]["get"]["security"]
        status = history.node.get(op.path, history.node.token(NAMUR)).status
        assert status == 200, op.path


def test_csv_and_parquet_carry_the_same_cells(history: History) -> None:
    node, token = history.node, history.node.token(NAMUR)
    text = node.get("/v1/analytics/export.csv", token).body.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    response = node.get("/v1/analytics/export.parquet", token)
    assert response.content_type == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.body)).to_pylist()
    assert len(rows) == len(table) > 200
    for row, record in zip(rows, table, strict=True):
        assert row["aggregate"] == record["aggregate"] and row["row"] == record["row"]
        assert row["value"] == ("" if record["value"] is None else str(record["value"]))
    assert not any(len(str(v)) == 64 for record in table for v in record.values())  # no keys


def test_an_auditor_names_the_commune(history: History) -> None:
    node = history.node
    token = node.token(AUDITOR)
    assert node.get("/v1/analytics/zones", token).status == 400
    body = node.get(f"/v1/analytics/zones?issuer={NAMUR.public_key.hex()}", token).json()
    assert body["name"] == "merchant_zones"


def test_the_wallet_draws_the_report_as_a_pdf(history: History, tmp_path: Path) -> None:
    report = history.node.get("/v1/analytics/report", history.node.token(NAMUR)).json()
    out = tmp_path / "analytics.pdf"
    write_pdf(report, out, "Analyse des flux commerciaux")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 2_000
    done = CliRunner().invoke(wallet_main, ["issuer", "analytics", "--help"])
    assert done.exit_code == 0 and "--out" in done.output
