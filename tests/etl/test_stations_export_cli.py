"""Stations, exports and the CLI on the tiny grid (SQLite and PostGIS)."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.export import rejects_frame, write_table
from etl.ingest import ingest_cases
from etl.stations import ingest_stations
from geo import schema
from geo.settings import Settings
from geo.store import Store
from tests.conftest import run_cli

SETTINGS = Settings()


def _stations(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.station).order_by(schema.station.c.station_id)).all()
    return pd.DataFrame(rows, columns=[c.name for c in schema.station.c]).set_index("station_id")


def test_stations_types_points_codes_and_rejects(tiny_engine, tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text(
        "站点编号,站点名称,站点类型,经度,纬度,服务单位代码\n"
        "H1,甲区信访超市,区信访超市,113.305,23.105,440103000000\n"
        "C1,甲镇综治中心,centre,113.315,23.115,440103101000\n"
        "S1,北村服务站,村居服务站,23.115,113.335,440104002201\n"        # swapped
        "M1,调解室,人民调解工作室,113.3409,23.105,440104002001\n"         # 92 m outside
        "X1,不明站,便民亭,113.305,23.105,\n"                              # bad type
        "X2,无坐标站,村居服务站,,,440103001001\n"                          # no point
        "X3,远方站,村居服务站,120.0,30.0,440103001001\n",                # outside
        encoding="utf-8")
    report = ingest_stations(Store(tiny_engine, SETTINGS), path)
    assert (report.rows_read, report.inserted, report.rejected, report.swapped_fixed) == (
        7, 4, 3, 1)
    stations = _stations(tiny_engine)
    assert stations["station_type"].to_dict() == {
        "C1": "centre", "H1": "hall", "M1": "mediation", "S1": "station"}
    assert stations.loc["S1", ["village_code", "street_code", "district_code"]].tolist() == [
        "440104002201", "440104002000", "440104000000"]
    assert stations.loc["M1", "village_code"] == "440104002001"
    with tiny_engine.connect() as conn:
        reasons = dict(conn.execute(sa.select(schema.reject.c.line_no,
                                              schema.reject.c.reason_code)).all())
    assert reasons == {6: "bad_station_type", 7: "missing_coordinates", 8: "out_of_extent"}
    again = ingest_stations(Store(tiny_engine, SETTINGS), path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)


def _ingest_sample(engine, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(
        "信访件编号,登记时间,经度,纬度,信访人,联系电话,身份证号\n"
        "E1,2024-01-02,113.305,23.105,张三丰,13812345678,440103199001011234\n"
        "E2,坏日期,113.305,23.105,李四,13900001111,\n",
        encoding="utf-8")
    return ingest_cases(Store(engine, SETTINGS), path)


def test_exports_are_masked(tiny_engine, tmp_path):
    _ingest_sample(tiny_engine, tmp_path)
    result = run_cli(tiny_engine, ["cases", "export", "-o", str(tmp_path / "cases.xlsx")])
    assert result.exit_code == 0, result.output
    back = pd.read_excel(tmp_path / "cases.xlsx", dtype=str)
    assert back.loc[0, "信访人"] == "张**" and back.loc[0, "联系电话"] == "138****5678"
    assert "petitioner_id_hash" not in back.columns and "row_hash" not in back.columns
    for column in ("村居代码", "镇街代码", "区代码", "落格方式", "落格距离（米）", "落格层级",
                   "落格说明", "候选单位", "地址匹配"):
        assert column in back.columns
    assert run_cli(tiny_engine, ["cases", "export", "-o", str(tmp_path / "cases.csv")]
                   ).exit_code == 0
    csv = (tmp_path / "cases.csv").read_text(encoding="utf-8-sig")
    assert "13812345678" not in csv and "张三丰" not in csv
    rejects = rejects_frame(tiny_engine)
    assert rejects["reason_code"].tolist() == ["bad_date"]
    assert "李*" in rejects.loc[0, "raw"] and "13900001111" not in rejects.loc[0, "raw"]
    out = write_table(rejects, tmp_path / "rejects.xlsx")
    assert pd.read_excel(out, dtype=str).loc[0, "reason_code"] == "bad_date"


@pytest.fixture
def cli(tiny_engine):
    """The real gridgov command on the tiny store."""
    return lambda args: run_cli(tiny_engine, args)


def test_cli_ingest_prints_reconciliation_and_exit_codes(cli, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("信访件编号,登记时间,经度,纬度\nA1,2024-01-02,113.305,23.105\n"
                    "A2,,113.305,23.105\n", encoding="gbk")
    result = cli(["ingest", "cases", str(path), "--crs", "wgs84"])
    assert result.exit_code == 0, result.output
    assert "读取 2 = 新增 1 + 更新 0 + 未变 0 + 拒收 1" in result.output
    assert "read 2 = inserted 1 + updated 0 + unchanged 0 + rejected 1" in result.output
    junk = tmp_path / "junk.csv"
    junk.write_text("foo,bar\n1,2\n", encoding="utf-8")
    bad = cli(["ingest", "cases", str(junk)])
    assert bad.exit_code != 0 and "可识别" in bad.output
    missing = cli(["ingest", "cases", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and "无法读取" in missing.output


def test_cli_exports_runs_and_reattach(cli, tiny_engine, tmp_path):
    _ingest_sample(tiny_engine, tmp_path)
    out = tmp_path / "export.csv"
    result = cli(["cases", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "张**" in out.read_text(encoding="utf-8-sig")
    rej = tmp_path / "rejects.csv"
    assert cli(["rejects", "export", "-o", str(rej)]).exit_code == 0
    assert "登记时间无法识别" in rej.read_text(encoding="utf-8-sig")
    runs = cli(["runs"])
    assert runs.exit_code == 0 and "cases" in runs.output
    again = cli(["reattach"])
    assert again.exit_code == 0 and "moved" in again.output
    stations = tmp_path / "s.csv"
    stations.write_text("站点编号,站点名称,站点类型,经度,纬度\nH1,超市,hall,113.305,23.105\n",
                        encoding="utf-8")
    result = cli(["ingest", "stations", str(stations)])
    assert result.exit_code == 0 and "新增 1" in result.output
