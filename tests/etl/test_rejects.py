"""One bad row never refuses the file: ragged and undecodable lines, over-long values, NUL,
broken GeoJSON features, future and out-of-order dates — each one reject with its line
and reason, the same on SQLite and PostGIS, and never a raw driver error."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from etl import clean, load
from etl.ingest import ingest_cases
from etl.sources import PROBLEM, read_source
from geo import schema
from geo.errors import StoreError
from geo.settings import Settings
from geo.store import Store
from tests.conftest import run_cli

HEADER = "信访件编号,登记时间,经度,纬度,地址,信访人"


def _rejects(engine) -> dict[int, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.reject.c.line_no, schema.reject.c.reason_code,
                                      schema.reject.c.reason)).all()
    return {r.line_no: (r.reason_code, r.reason) for r in rows}


def _case_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(schema.cases.c.case_id)).scalars())


def test_broken_lines_limits_and_nul_are_per_row_on_both_backends(tiny_engine, tmp_path):
    lines = [
        HEADER,
        "G1,2024-01-02,113.305,23.105,幸福路1号,张三",          # 2 good
        "R1,2024-01-02,113.305,23.105,幸福路1号",               # 3 a field too few
        "",                                                     # 4 blank: skipped, counted
        "R2,2024-01-02,113.305,23.105,幸福路1号,李四,多余",      # 5 a field too many
        "L" * 65 + ",2024-01-02,113.305,23.105,,",              # 6 case id of 65 characters
        "N1,2024-01-02,113.305,23.105,幸福\x00路,",              # 7 NUL in a value
        "T1,2024-01-02,113.305,23.105," + "长" * 10_001 + ",",   # 8 address too long
        "G2,2024-01-03,113.335,23.115,,王五",                    # 9 good
    ]
    data = "\n".join(lines).encode("utf-8")
    data += b"\nX1,2024-01-02,113.305,23.105,\xff\xfe\xfd,\n"     # 10 not UTF-8 text
    path = tmp_path / "cases.csv"
    path.write_bytes(data)
    report = ingest_cases(Store(tiny_engine, Settings()), path)
    assert (report.rows_read, report.inserted, report.rejected) == (8, 2, 6)
    assert report.balanced
    assert _case_ids(tiny_engine) == ["G1", "G2"]
    rejects = _rejects(tiny_engine)
    assert {k: v[0] for k, v in rejects.items()} == {
        3: "ragged_row", 5: "ragged_row", 6: "too_long", 7: "nul_character", 8: "too_long",
        10: "undecodable"}
    assert rejects[3][1].startswith("本行有 5 个字段，表头有 6 列")
    assert rejects[6][1] == "信访件编号过长：65 字，上限 64 字"
    assert rejects[8][1] == "地址过长：10001 字，上限 10000 字"
    assert "UTF-8" in rejects[10][1]
    with tiny_engine.connect() as conn:  # raw values kept (masked) even for a broken line
        raw = json.loads(conn.execute(sa.select(schema.reject.c.raw)
                                      .where(schema.reject.c.line_no == 5)).scalar_one())
    assert raw["信访件编号"] == "R2" and raw["信访人"] == "李*"


def test_a_gbk_file_with_one_bad_line_loads_the_rest(tmp_path):
    body = (HEADER + "\nA1,2024-01-02,113.305,23.105,甲一街道,张三\n").encode("gbk")
    body += b"A2,2024-01-02,113.305,23.105,\x81\x20,\n"  # an invalid GBK pair
    body += "A3,2024-01-02,113.305,23.105,乙区,李四\n".encode("gbk")
    path = tmp_path / "gbk.csv"
    path.write_bytes(body)
    source = read_source(path)
    assert source.encoding == "gbk"
    frame = source.frame
    assert frame["_line"].tolist() == [2, 3, 4]
    assert frame[PROBLEM].tolist()[1] == "undecodable"
    assert frame["地址"].tolist()[2] == "乙区"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_malformed_geojson_features_are_rejected_one_by_one(tiny_engine, tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        "x",
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": "113.3,23.1"},
         "properties": {"信访件编号": "G1", "登记时间": "2024-01-02"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []},
         "properties": {"信访件编号": "G2", "登记时间": "2024-01-02"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.305, 23.105]},
         "properties": {"信访件编号": "G3", "登记时间": "2024-01-02"}},
    ]}
    path = tmp_path / "cases.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = ingest_cases(Store(tiny_engine, Settings()), path)
    assert (report.rows_read, report.inserted, report.rejected) == (4, 1, 3)
    rejects = _rejects(tiny_engine)
    assert set(rejects) == {1, 2, 3} and {v[0] for v in rejects.values()} == {"bad_feature"}
    assert "第1个要素不是对象" in rejects[1][1] and "feature 1 is not an object" in rejects[1][1]
    assert "[经度, 纬度]" in rejects[2][1] and "coordinates must be [lon, lat]" in rejects[2][1]
    assert "Polygon" in rejects[3][1]


def _cleaned(rows: list[dict], *, now: datetime) -> clean.Cleaned:
    return clean.clean_cases(pd.DataFrame(rows), settings=Settings(), crs="wgs84",
                             extent=None, now=now)


def test_future_timestamps_are_rejected_and_the_data_date_never_passes_now():
    now = datetime(2026, 11, 30, 12, 0)
    cleaned = _cleaned([
        {"case_id": "F1", "registered_at": "2099-12-31"},                     # far future
        {"case_id": "F2", "registered_at": "2026-11-30 12:09"},               # within 10 min
        {"case_id": "F3", "registered_at": "2026-11-30 12:11"},               # beyond
        {"case_id": "F4", "registered_at": "2026-10-01", "replied_at": "2026-10-20",
         "due_at": "2027-01-01"},                                            # a due date may
    ], now=now)
    reasons = dict(zip(cleaned.rejects["pos"], cleaned.rejects["reason"]))
    assert reasons == {0: "登记时间晚于导入时间：2099-12-31 00:00（导入于 2026-11-30 12:00）",
                       2: "登记时间晚于导入时间：2026-11-30 12:11（导入于 2026-11-30 12:00）"}
    # replied 2026-10-20 + 30-day window < now: the rating window has passed
    assert cleaned.frame.loc[3, "rating_state"] == "超期未评价"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_one_far_future_row_cannot_move_the_stored_data_date(tiny_engine, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(HEADER + "\nF1,2024-01-02,113.305,23.105,,\nF2,2099-12-31,113.305,23.105,,\n",
                    encoding="utf-8")
    report = ingest_cases(Store(tiny_engine, Settings()), path)
    assert (report.inserted, report.rejected) == (1, 1)
    assert _rejects(tiny_engine)[3][0] == "future_date"
    latest = [c for c in schema.cases.c if c.name.endswith("_at") and c.name != "due_at"]
    with tiny_engine.connect() as conn:
        newest = max(v for c in latest
                     if (v := conn.execute(sa.select(sa.func.max(c))).scalar()) is not None)
    assert newest <= datetime.now()


def test_out_of_order_lifecycles_are_rejected_with_both_steps_named():
    now = datetime(2026, 11, 30)
    cleaned = _cleaned([
        {"case_id": "O1", "registered_at": "2026-03-01", "closed_at": "2026-02-01"},
        {"case_id": "O2", "registered_at": "2026-03-01", "accepted_at": "2026-03-05",
         "closed_at": "2026-03-04"},
        {"case_id": "O3", "registered_at": "2026-03-01", "replied_at": "2026-03-10",
         "rated_at": "2026-03-09"},
        {"case_id": "O4", "registered_at": "2026-03-01", "replied_at": "2026-03-10",
         "reviewed_at": "2026-04-10", "rechecked_at": "2026-04-01"},
        {"case_id": "O5", "registered_at": "2026-03-01 10:00", "accepted_at": "2026-03-01 09:59:30"},
    ], now=now)
    reasons = dict(zip(cleaned.rejects["pos"], cleaned.rejects["reason"]))
    assert reasons == {0: "办结时间早于登记时间：2026-02-01 00:00",
                       1: "办结时间早于受理时间：2026-03-04 00:00",
                       2: "评价时间早于答复时间：2026-03-09 00:00",
                       3: "复核时间早于复查时间：2026-04-01 00:00"}
    assert cleaned.frame["case_id"].tolist() == ["O5"]  # half a minute: clock noise, kept


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_a_driver_error_reaches_the_user_as_a_message_and_the_ledger(tiny_engine, tmp_path,
                                                                    monkeypatch):
    path = tmp_path / "cases.csv"
    path.write_text(HEADER + "\nD1,2024-01-02,113.305,23.105,,\n", encoding="utf-8")

    def broken(*_args, **_kwargs):
        raise sa.exc.IntegrityError("INSERT INTO cases …", {}, Exception("duplicate key"))

    monkeypatch.setattr(load, "_insert_batch", broken)
    with pytest.raises(StoreError, match="写入数据库失败") as err:
        ingest_cases(Store(tiny_engine, Settings()), path)
    assert "duplicate key" in str(err.value)
    result = run_cli(tiny_engine, ["ingest", "cases", str(path)])
    assert result.exit_code == 1
    assert "writing to the store failed" in result.output and "Traceback" not in result.output
    with tiny_engine.connect() as conn:
        statuses = conn.execute(sa.select(schema.ingest_run.c.status)).scalars().all()
    assert statuses == ["failed", "failed"] and _case_ids(tiny_engine) == []
