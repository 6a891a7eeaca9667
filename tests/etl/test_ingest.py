"""End-to-end ingest on the tiny grid (tests/grids.py), on SQLite and PostGIS.

Tiny grid reminder: villages are 0.01° squares; west→east streets 440103001000,
440103101000, 440104001000, 440104002000 (lon 113.30/.31/.32/.33/.34); each street's
village …001 is south (lat 23.10–23.11), …201 north (23.11–23.12).
"""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from etl import load
from etl.ingest import ingest_cases, ingest_cases_frame
from geo import schema
from geo.crs import from_wgs84
from geo.errors import SourceError
from geo.settings import Settings
from geo.store import Store

SETTINGS = Settings()
HEADER = "信访件编号,登记时间,受理时间,办结时间,满意度,经度,纬度,地址,村居代码,信访人,联系电话,身份证号"


def _write(tmp_path, lines: list[str], name: str = "cases.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    return path


def _cases(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.cases).order_by(schema.cases.c.case_id)).all()
    return pd.DataFrame(rows, columns=[c.name for c in schema.cases.c]).set_index("case_id")


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _rejects(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.reject).order_by(schema.reject.c.id)).all()
    return pd.DataFrame(rows, columns=[c.name for c in schema.reject.c])


def _run(engine, run_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.ingest_run)
                            .where(schema.ingest_run.c.run_id == run_id)).one()


def test_every_reject_reason_with_line_and_masked_raw(tiny_engine, tmp_path):
    path = _write(tmp_path, [
        ",2024-01-02,,,,113.305,23.105,,,,,",                      # line 2 missing id
        "R2,,,,,113.305,23.105,,,,,",                              # line 3 missing 登记时间
        "R3,2024-02-30,,,,113.305,23.105,,,,,",                    # line 4 bad date
        "R4,2024-01-02,2023-12-01,,,113.305,23.105,,,,,",          # line 5 受理 before 登记
        "R5,2024-01-02,,,,abc,23.105,,,张三丰,13812345678,440103199001011234",  # line 6
        "R6,2024-01-02,,,,120.0,30.0,,,,,",                        # line 7 outside the grid
        "R7,2024-01-02,,,,113.305,23.105,,,,,",                    # line 8 duplicate (dropped)
        "R7,2024-01-03,,,,113.305,23.105,,,,,",                    # line 9 kept
    ])
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert (report.rows_read, report.inserted, report.rejected) == (8, 1, 7)
    rejects = _rejects(tiny_engine)
    assert dict(zip(rejects["line_no"], rejects["reason_code"], strict=True)) == {
        2: "missing_case_id", 3: "missing_registered_at", 4: "bad_date", 5: "date_order",
        6: "bad_coordinates", 7: "out_of_extent", 8: "duplicate_in_file"}
    by_line = rejects.set_index("line_no")
    assert by_line.loc[4, "reason"] == "登记时间无法识别：2024-02-30"
    assert by_line.loc[5, "reason"] == "受理时间早于登记时间：2023-12-01 00:00"
    raw = json.loads(by_line.loc[6, "raw"])
    assert raw["信访人"] == "张**" and raw["联系电话"] == "138****5678"
    assert raw["身份证号"] == "4****************4"
    assert "440103199001011234" not in rejects["raw"].str.cat()
    assert str(_cases(tiny_engine).loc["R7", "registered_at"]).startswith("2024-01-03")


def test_each_attach_method(tiny_engine, tmp_path):
    path = _write(tmp_path, [
        "P1,2024-01-02,,,,113.335,23.115,,,,,",        # inside 440104002201
        "N1,2024-01-02,,,,113.3409,23.105,,,,,",       # ~92 m east of the grid → nearest
        "C1,2024-01-02,,,,,,,440104001201,,,",         # no point, village code
        "A1,2024-01-02,,,,,,乙区乙二街道北村幸福路1号,,,,",  # no point, address
        "S1,2024-01-02,,,,,,甲镇人民路8号,,,,",          # address names a street only
        "B1,2024-01-02,,,,xyz,,,440103001001,,,",      # bad point, but a usable code
        "U1,2024-01-02,,,,,,无名路,,,,",                  # nothing usable → unassigned
    ])
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert (report.inserted, report.rejected, report.unassigned) == (7, 0, 1)
    cases = _cases(tiny_engine)
    got = cases[["attach_method", "village_code", "street_code", "district_code"]]
    got = got.astype(object).where(got.notna(), None)
    assert got.loc["P1"].tolist() == ["point", "440104002201", "440104002000", "440104000000"]
    assert got.loc["N1"].tolist() == ["nearest", "440104002001", "440104002000", "440104000000"]
    assert 80 < cases.loc["N1", "attach_distance_m"] < 100
    assert got.loc["C1"].tolist() == ["code", "440104001201", "440104001000", "440104000000"]
    assert got.loc["A1"].tolist() == ["address", "440104002201", "440104002000", "440104000000"]
    assert got.loc["S1"].tolist() == ["address", None, "440103101000", "440103000000"]
    assert got.loc["B1"].tolist() == ["code", "440103001001", "440103001000", "440103000000"]
    assert got.loc["U1", "attach_method"] == "unassigned"
    assert got.loc["U1", ["village_code", "street_code", "district_code"]].isna().all()
    assert cases["boundary_version"].notna().all()


def test_points_on_shared_borders_go_to_the_smallest_code(tiny_engine, tmp_path):
    path = _write(tmp_path, [
        "E1,2024-01-02,,,,113.31,23.105,,,,,",   # edge of 440103001001 | 440103101001
        "E2,2024-01-02,,,,113.305,23.11,,,,,",   # edge of 440103001001 | 440103001201
        "E3,2024-01-02,,,,113.32,23.11,,,,,",    # corner of four villages, two districts
    ])
    ingest_cases(Store(tiny_engine, SETTINGS), path)
    villages = _cases(tiny_engine)["village_code"].to_dict()
    assert villages == {"E1": "440103001001", "E2": "440103001001", "E3": "440103101001"}


def test_swapped_coordinates_fixed_and_counted(tiny_engine, tmp_path):
    path = _write(tmp_path, ["W1,2024-01-02,,,,23.115,113.335,,,,,",
                             "W2,2024-01-02,,,,113.335,23.115,,,,,"])
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert report.swapped_fixed == 1
    cases = _cases(tiny_engine)
    assert cases.loc["W1", ["lon", "lat"]].tolist() == [113.335, 23.115]
    assert cases.loc["W1", "village_code"] == "440104002201"
    with tiny_engine.connect() as conn:
        assert conn.execute(sa.select(schema.ingest_run.c.swapped_fixed)).scalar_one() == 1


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_chinese_coordinate_systems_land_in_the_right_village(tiny_engine, tmp_path, crs):
    # 113.3095 is 50 m west of the 113.31 border; GCJ-02/BD-09 shift it east across it
    lon, lat = from_wgs84(113.3095, 23.1050, crs)
    assert lon > 113.31  # unconverted it would land in the wrong street
    path = _write(tmp_path, [f"K1,2024-01-02,,,,{lon:.7f},{lat:.7f},,,,,"])
    ingest_cases(Store(tiny_engine, SETTINGS), path, crs=crs)
    case = _cases(tiny_engine).loc["K1"]
    assert case["village_code"] == "440103001001"
    assert case["lon"] == pytest.approx(113.3095, abs=1e-6)


def test_same_file_twice_changes_nothing(tiny_engine, tmp_path):
    path = _write(tmp_path, [
        "I1,2024-01-02,2024-01-03,,,113.305,23.105,,,李四,13900001111,440103199001011234",
        "I2,2024-01-02,,,,113.335,23.115,,,,,",
        "I3,bad,,,,113.335,23.115,,,,,",
    ], encoding="gbk")
    first = ingest_cases(Store(tiny_engine, SETTINGS), path)
    cases_before, events_before = _cases(tiny_engine), _count(tiny_engine, schema.case_event)
    second = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert (first.inserted, first.unchanged, first.rejected) == (2, 0, 1)
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 0, 2, 1)
    assert _count(tiny_engine, schema.cases) == 2
    assert _count(tiny_engine, schema.case_event) == events_before == 2
    pd.testing.assert_frame_equal(
        _cases(tiny_engine).drop(columns=["updated_at"]),
        cases_before.drop(columns=["updated_at"]))


def test_newer_export_appends_one_event_per_lifecycle_change(tiny_engine, tmp_path):
    first = _write(tmp_path, ["U1,2024-01-02,2024-01-03,,,113.305,23.105,,,,,",
                              "U2,2024-01-02,,,,113.335,23.115,,,,,",
                              "U4,2024-01-02,2024-01-04,,,113.335,23.115,,,,,"], name="a.csv")
    ingest_cases(Store(tiny_engine, SETTINGS), first)
    newer = _write(tmp_path, ["U1,2024-01-02,2024-01-03,2024-02-01,满意,113.305,23.105,,,,,",
                              "U2,2024-01-02,,,,113.335,23.115,,,,,",
                              "U3,2024-01-05,,,,113.335,23.115,,,,,",
                              "U4,2024-01-02,2024-01-05,,,113.335,23.115,,,,,"], name="b.csv")
    report = ingest_cases(Store(tiny_engine, SETTINGS), newer)
    assert (report.inserted, report.updated, report.unchanged, report.events) == (1, 2, 1, 3)
    case = _cases(tiny_engine).loc["U1"]
    assert (case["status"], case["rating"], case["rating_state"]) == ("closed", "满意", "已评价")
    e = schema.case_event.c
    with tiny_engine.connect() as conn:
        events = conn.execute(sa.select(e.case_id, e.event, e.detail, e.at, e.status, e.source,
                                        e.recorded_at, e.run_id)
                              .where(e.event != "created").order_by(e.id)).all()
        created = conn.execute(sa.select(sa.func.count()).select_from(schema.case_event)
                               .where(e.event == "created", e.run_id.is_not(None))).scalar()
    assert created == 4  # one per new case, none for the updates
    got = {(r.case_id, r.event): r for r in events}
    assert set(got) == {("U1", "closed"), ("U1", "rated"), ("U4", "corrected")}
    closed = got["U1", "closed"]
    assert str(closed.at) == "2024-02-01 00:00:00"  # when it happened, from the export
    assert (closed.status, closed.source, closed.run_id) == ("closed", "import", report.run_id)
    assert closed.recorded_at > closed.at  # when gridgov learnt of it
    fixed = got["U4", "corrected"]
    assert fixed.detail == "受理时间 2024-01-04 00:00:00 → 2024-01-05 00:00:00"
    assert str(fixed.at) == "2024-01-05 00:00:00"
    # the same newer file again: nothing changes, no new events
    again = ingest_cases(Store(tiny_engine, SETTINGS), newer)
    assert (again.updated, again.events) == (0, 0)


def test_failure_mid_run_leaves_store_unchanged_and_rerun_completes(
        tiny_engine, tmp_path, monkeypatch):
    path = _write(tmp_path, [f"F{i},2024-01-02,,,,113.305,23.105,,,,," for i in range(5)])
    monkeypatch.setattr(load, "BATCH_ROWS", 2)
    calls = {"n": 0}
    real = load._insert_batch

    def flaky(writer, batch, *, start):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        real(writer, batch, start=start)

    monkeypatch.setattr(load, "_insert_batch", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert _count(tiny_engine, schema.cases) == 0
    assert _count(tiny_engine, schema.case_event) == 0
    assert _count(tiny_engine, schema.reject) == 0
    failed = _run(tiny_engine, 1)
    assert failed.status == "failed" and "disk on fire" in failed.message
    monkeypatch.setattr(load, "_insert_batch", real)
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert report.inserted == 5 and _run(tiny_engine, report.run_id).status == "ok"
    assert _count(tiny_engine, schema.case_event) == 5


def test_open311_file(tiny_engine, tmp_path):
    doc = [
        {"service_request_id": "311-1", "status": "closed", "service_name": "Pothole",
         "requested_datetime": "2024-01-02T08:00:00+08:00",
         "updated_datetime": "2024-01-05T10:00:00+08:00", "lat": 23.115, "long": 113.335,
         "description": "路面坑洼"},
        {"service_request_id": "311-2", "status": "open", "service_name": "噪音污染",
         "requested_datetime": "2024-01-03T00:00:00Z", "lat": 23.105, "long": 113.305},
    ]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert (report.inserted, report.rejected) == (2, 0)
    cases = _cases(tiny_engine)
    assert cases.loc["311-1", ["status", "category", "village_code"]].tolist() == [
        "closed", "交通运输", "440104002201"]
    assert str(cases.loc["311-1", "closed_at"]) == "2024-01-05 10:00:00"
    assert str(cases.loc["311-2", "registered_at"]) == "2024-01-03 08:00:00"  # Z → +08:00
    assert cases.loc["311-2", "status"] == "registered"


def test_frame_input_with_typed_values(tiny_engine):
    frame = pd.DataFrame({
        "case_id": ["T1", "T2"],
        "registered_at": pd.to_datetime(["2024-01-02 08:00", "2024-01-03 09:00"]),
        "lon": [113.305, 113.335], "lat": [23.105, 23.115],
        "is_repeat": [False, True], "synthetic": [True, True],
    })
    report = ingest_cases_frame(Store(tiny_engine, SETTINGS), frame)
    assert report.inserted == 2
    cases = _cases(tiny_engine)
    assert cases["is_repeat"].tolist() == [False, True]
    assert cases["synthetic"].all()


def test_unusable_file_raises(tiny_engine, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(SourceError, match="可识别"):
        ingest_cases(Store(tiny_engine, SETTINGS), path)
    no_id = tmp_path / "noid.csv"
    no_id.write_text("登记时间,经度\n2024-01-02,113.3\n", encoding="utf-8")
    with pytest.raises(SourceError, match="信访件编号"):
        ingest_cases(Store(tiny_engine, SETTINGS), no_id)
    assert _count(tiny_engine, schema.ingest_run) == 0


def test_reattach_after_a_boundary_import(tiny_engine, tmp_path):
    from etl.reattach import reattach
    from geo.grid import load_units

    path = _write(tmp_path, ["M1,2024-01-02,,,,113.305,23.1115,,,,,",
                             "M2,2024-01-02,,,,113.305,23.118,,,,,"])
    ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert _cases(tiny_engine)["village_code"].tolist() == ["440103001201", "440103001201"]
    # new boundaries: the south village grows north to lat 23.112
    moved = gpd.GeoDataFrame({
        "code": ["440103001001", "440103001201"], "name": ["甲一街道南社区", "甲一街道北村"],
        "level": ["village", "village"], "parent_code": ["440103001000"] * 2,
        "population": [2500, 2500], "population_estimated": [True, True],
        "geometry_source": ["imported"] * 2,
        "geometry": [shapely.MultiPolygon([shapely.box(113.30, 23.10, 113.31, 23.112)]),
                     shapely.MultiPolygon([shapely.box(113.30, 23.112, 113.31, 23.12)])],
    }, geometry="geometry", crs="EPSG:4326")
    version = load_units(tiny_engine, moved, kind="import", level="village")
    report = reattach(Store(tiny_engine, SETTINGS))
    assert (report.rows_read, report.moved) == (2, 1)
    cases = _cases(tiny_engine)
    assert cases["village_code"].tolist() == ["440103001001", "440103001201"]
    assert (cases["boundary_version"] == version).all()
    with tiny_engine.connect() as conn:
        event = conn.execute(sa.select(schema.case_event)
                             .where(schema.case_event.c.event == "reattached")).one()
    assert (event.case_id, event.detail) == ("M1", "440103001201→440103001001")
    again = reattach(Store(tiny_engine, SETTINGS))
    assert again.moved == 0


def _index_names(engine) -> set[str]:
    inspector = sa.inspect(engine)
    return {i["name"] for t in ("cases", "case_event") for i in inspector.get_indexes(t)}


def test_bulk_path_rebuilds_indexes_and_rolls_back_with_them(tiny_engine, tmp_path, monkeypatch):
    before = _index_names(tiny_engine)
    assert {"ix_cases_village", "ix_case_event_case"} <= before
    monkeypatch.setattr(load, "BULK_ROWS", 1)  # every run counts as a bulk load
    path = _write(tmp_path, [f"Q{i},2024-01-02,,,,113.305,23.105,,,,," for i in range(3)])

    def broken(writer, batch, *, start):
        raise RuntimeError("power cut")

    real = load._insert_batch
    monkeypatch.setattr(load, "_insert_batch", broken)
    with pytest.raises(RuntimeError):
        ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert _index_names(tiny_engine) == before  # the DROP INDEX was rolled back too
    monkeypatch.setattr(load, "_insert_batch", real)
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert report.inserted == 3
    assert _index_names(tiny_engine) == before
    assert _count(tiny_engine, schema.case_event) == 3


def test_sqlite_staging_files_are_finished_before_they_are_attached(tiny_engine, tmp_path,
                                                                    monkeypatch):
    """ADBC brings its own copy of SQLite: while it writes a staging file, the sqlite3 copy must
    not have that file attached (in one process the two copies' locks do not exclude each other,
    and a schema check may read every attached file). Overlapping them made 2 of 900 looped
    demo builds fail with "database disk image is malformed"."""
    if tiny_engine.dialect.name != "sqlite":
        pytest.skip("the staging files are SQLite's bulk path")
    events: list[str] = []
    real_stage = load._stage

    def stage(adbc, path, rows):  # noqa: ANN001
        real_stage(adbc, path, rows)  # returns once its ADBC connection is closed
        events.append(f"staged {path.name}")

    monkeypatch.setattr(load, "_stage", stage)
    tiny_engine.dispose()  # new connections, each with a statement trace

    @sa.event.listens_for(tiny_engine, "connect")
    def trace(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.set_trace_callback(
            lambda sql: events.append(sql) if sql.startswith("ATTACH") else None)

    path = _write(tmp_path, [f"Q{i},2024-01-02,,,,113.305,23.105,,,,," for i in range(40)])
    report = ingest_cases(Store(tiny_engine, SETTINGS), path)
    sa.event.remove(tiny_engine, "connect", trace)
    assert report.inserted == 40
    staged = [i for i, e in enumerate(events) if e.startswith("staged")]
    attached = [i for i, e in enumerate(events) if e.startswith("ATTACH")]
    assert len(staged) == len(attached) == load.STAGING_PARTS
    assert max(staged) < min(attached)


def test_a_staging_error_fails_the_run_and_leaves_the_store_as_it_was(tiny_engine, tmp_path,
                                                                       monkeypatch):
    """Staging now ends before the transaction starts: its error still stops the run, with no
    case stored and no staging file left (the writer and the run ledger both clean up)."""
    if tiny_engine.dialect.name != "sqlite":
        pytest.skip("the staging files are SQLite's bulk path")
    from etl.ledger import staging_dir

    real_stage = load._stage

    def stage(adbc, path, rows):  # noqa: ANN001
        real_stage(adbc, path, rows)
        if path.name == "part3.db":  # the file is on disk, then the disk fills up
            raise OSError("No space left on device")

    monkeypatch.setattr(load, "_stage", stage)
    path = _write(tmp_path, [f"Q{i},2024-01-02,,,,113.305,23.105,,,,," for i in range(40)])
    with pytest.raises(OSError, match="No space left"):
        ingest_cases(Store(tiny_engine, SETTINGS), path)
    assert _count(tiny_engine, schema.cases) == 0
    folder = staging_dir(tiny_engine, 1, create=False)
    assert not folder.exists() or not any(folder.glob("part*.db"))
    monkeypatch.setattr(load, "_stage", real_stage)
    assert ingest_cases(Store(tiny_engine, SETTINGS), path).inserted == 40
