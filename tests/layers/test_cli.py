"""``gridgov metrics`` through the real ``gridgov`` command (``--db`` on the test store)."""

from __future__ import annotations

import io
import json

import pandas as pd

from tests.conftest import run_cli
from tests.layers.conftest import V1S, insert_cases
from tests.layers.test_metrics import _six_cases


def test_metrics_csv_with_filters(tiny_engine, tmp_path):
    insert_cases(tiny_engine, _six_cases())
    target = tmp_path / "m.csv"
    result = run_cli(tiny_engine, [
        "metrics", "--level", "village", "--from", "2025-01-01", "--to", "2025-12-31",
        "--category", "城乡建设", "--format", "csv", "-o", str(target),
    ])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(target, encoding="utf-8-sig", dtype={"code": str})
    assert list(frame["row_type"][-2:]) == ["city", "unassigned"]
    row = frame[frame["code"] == V1S].iloc[0]
    assert row["cases"] == 4  # a b d f are 城乡建设
    assert {"on_time_completion_num", "on_time_completion_den", "parent_code"} <= set(frame)


def test_metrics_json_to_stdout(tiny_engine):
    insert_cases(tiny_engine, _six_cases())
    result = run_cli(tiny_engine, ["metrics", "--level", "district", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.load(io.StringIO(result.output))
    assert [r["cases"] for r in rows] == [6, 0, 6, 0]
    assert rows[1]["on_time_completion"] is None


def test_bad_level_is_a_bilingual_error(tiny_engine):
    result = run_cli(tiny_engine, ["metrics", "--level", "grid"])
    assert result.exit_code == 1 and "网格中没有" in result.output and "grid" in result.output
