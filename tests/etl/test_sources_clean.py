"""Reading sources and cleaning values: no store needed, answers written out."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pandas as pd
import pytest

from etl import clean
from etl.columns import canonical_headers, normalise_category, normalise_channel
from etl.sources import read_source
from geo.errors import SourceError
from geo.privacy import hash_id_number
from geo.settings import Settings

CSV = "信访件编号,登记时间,经度,纬度,地址\nA1,2024-01-02 08:00:00,113.305,23.105,甲一街道南社区\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings_read_alike(tmp_path, encoding):
    path = tmp_path / "cases.csv"
    path.write_bytes(CSV.encode(encoding))
    source = read_source(path)
    assert list(source.frame.columns) == ["信访件编号", "登记时间", "经度", "纬度", "地址", "_line"]
    assert source.frame.iloc[0]["地址"] == "甲一街道南社区"
    assert source.frame.iloc[0]["_line"] == 2
    assert source.encoding == encoding


def test_gb18030_only_characters(tmp_path):
    path = tmp_path / "cases.csv"
    text = CSV.replace("甲一街道南社区", "𠮷社区")  # outside GBK, inside GB18030
    path.write_bytes(text.encode("gb18030"))
    source = read_source(path)
    assert source.encoding == "gb18030"
    assert source.frame.iloc[0]["地址"] == "𠮷社区"


def test_xlsx_typed_cells_become_text(tmp_path):
    import datetime as dt

    path = tmp_path / "cases.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["信访件编号", "登记时间", "经度", "纬度"])
    sheet.append([12345, dt.datetime(2024, 1, 2, 8, 0), 113.305, 23.105])
    sheet.append([None, None, None, None])  # blank line skipped, numbering kept
    sheet.append(["B2", "2024-01-03", 113.315, 23.115])
    book.save(path)
    frame = read_source(path).frame
    assert frame["信访件编号"].tolist() == ["12345", "B2"]
    assert frame["登记时间"].tolist() == ["2024-01-02 08:00:00", "2024-01-03"]
    assert frame["_line"].tolist() == [2, 4]


def test_json_list_and_records(tmp_path):
    records = [{"case_id": "J1", "registered_at": "2024-01-02", "lon": 113.305, "lat": 23.105}]
    for doc in (records, {"records": records}):
        path = tmp_path / "cases.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        source = read_source(path)
        assert source.kind == "json"
        assert source.frame.iloc[0]["lon"] == "113.305"
        assert source.frame.iloc[0]["_line"] == 1


def test_geojson_points_give_lon_lat(tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.305, 23.105]},
         "properties": {"信访件编号": "G1", "登记时间": "2024-01-02"}}]}
    path = tmp_path / "cases.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    source = read_source(path)
    assert source.kind == "geojson"
    assert source.frame.iloc[0][["lon", "lat"]].tolist() == ["113.305", "23.105"]


def test_open311_fields_map_to_canonical(tmp_path):
    doc = [{"service_request_id": "638344", "status": "closed", "service_name": "Pothole",
            "requested_datetime": "2024-01-02T08:00:00+08:00",
            "updated_datetime": "2024-01-05T10:00:00+08:00", "lat": 23.105, "long": 113.305,
            "address": "甲一街道", "description": "路面坑洼"}]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    source = read_source(path)
    assert source.kind == "open311"
    row = source.frame.iloc[0]
    assert row["case_id"] == "638344"
    assert row["closed_at"] == "2024-01-05T10:00:00+08:00"
    assert row["lon"] == "113.305"


def test_unreadable_files_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="无法读取"):
        read_source(tmp_path / "missing.csv")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SourceError, match="JSON"):
        read_source(bad)
    binary = tmp_path / "bad.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x00" * 50)
    with pytest.raises(SourceError):
        read_source(binary)


def test_headers_map_aliases_and_mapping_file_wins():
    headers = ["信访件编号", "交办时间", "满意度", "Longitude", " 纬 度 ", "备注", "事发地点"]
    mapped = canonical_headers(headers, mapping={"事发地点": "address"})
    assert mapped == {"信访件编号": "case_id", "交办时间": "transferred_at", "满意度": "rating",
                      "Longitude": "lon", " 纬 度 ": "lat", "事发地点": "address"}
    with pytest.raises(SourceError, match="unknown canonical"):
        canonical_headers(headers, mapping={"备注": "nonsense"})


def test_categories_old_names_and_channels():
    cats = normalise_category(pd.Series(["国土资源", "城乡建设/物业服务", "卫生计生", "新奇", None]))
    assert cats.tolist()[:4] == ["自然资源", "城乡建设", "卫生健康", "其他"]
    assert pd.isna(cats.iloc[4])
    channels = normalise_channel(pd.Series(["网信", "走访", "12345", "来信"]))
    assert channels.tolist() == ["网上", "来访", "电话", "来信"]


def test_timestamps_in_every_usual_spelling():
    values = pd.Series(["2024-03-01 08:30:00", "2024/3/1 8:30", "2024年3月1日", "20240301",
                        "2024-03-01T00:30:00Z", "45352.5", "", None, "明天", "1900-01-01"])
    parsed, bad = clean.parse_timestamps(values, values.index)
    expected = ["2024-03-01 08:30:00", "2024-03-01 08:30:00", "2024-03-01 00:00:00",
                "2024-03-01 00:00:00", "2024-03-01 08:30:00", "2024-03-01 12:00:00"]
    assert [str(t) for t in parsed[:6]] == expected
    assert parsed[6:].isna().all()
    assert bad.tolist() == [False] * 8 + [True, True]


def test_timestamps_the_common_spelling_cannot_roll_over():
    # Arrow reads the common spelling, but only where pandas would read the same moment:
    # what strptime would roll over or read loosely is pandas' (its 23:59:60 is 00:00 next day)
    values = pd.Series(["2024-02-29 12:00:00", "2023-02-29 12:00:00", "2024-02-30 00:00:00",
                        "2024-2-3 08:30:00", "2024-02-03 23:59:60", "2024-02-03 24:00:00",
                        "1989-12-31 23:59:59", "2100-12-31 23:59:59"])
    parsed, bad = clean.parse_timestamps(values, values.index)
    assert [None if pd.isna(t) else str(t) for t in parsed] == [
        "2024-02-29 12:00:00", None, None, "2024-02-03 08:30:00", "2024-02-04 00:00:00", None,
        None, "2100-12-31 23:59:59"]
    assert bad.tolist() == [False, True, True, False, False, True, True, False]


def _clean(rows: list[dict], **kwargs) -> clean.Cleaned:
    frame = pd.DataFrame(rows)
    extent = clean.Extent(113.30, 23.10, 113.34, 23.12)
    return clean.clean_cases(frame, settings=Settings(), crs=kwargs.get("crs", "wgs84"),
                             extent=extent)


def test_every_clean_reject_reason():
    cleaned = _clean([
        {"case_id": None, "registered_at": "2024-01-02"},
        {"case_id": "B", "registered_at": None},
        {"case_id": "C", "registered_at": "2024-13-45"},
        {"case_id": "D", "registered_at": "2024-01-02", "closed_at": "2023-12-01"},
        {"case_id": "E", "registered_at": "2024-01-02", "lon": "abc", "lat": "23.1"},
        {"case_id": "F", "registered_at": "2024-01-02", "lon": "120.0", "lat": "30.0"},
        {"case_id": "G", "registered_at": "2024-01-02"},
        {"case_id": "G", "registered_at": "2024-01-03"},
    ])
    reasons = dict(zip(cleaned.rejects["pos"], cleaned.rejects["reason_code"], strict=True))
    assert reasons == {0: "missing_case_id", 1: "missing_registered_at", 2: "bad_date",
                       3: "date_order", 6: "duplicate_in_file"}
    texts = dict(zip(cleaned.rejects["pos"], cleaned.rejects["reason"], strict=True))
    assert texts[2] == "登记时间无法识别：2024-13-45"
    assert texts[6] == "同一文件中信访件编号重复（保留最后一行）"
    provisional = dict(zip(cleaned.coord_problems["pos"], cleaned.coord_problems["reason_code"],
                           strict=True))
    assert provisional == {4: "bad_coordinates", 5: "out_of_extent"}
    assert cleaned.frame.index.tolist() == [4, 5, 7]
    assert np.isnan(cleaned.frame.loc[4, "lon"])


def test_swapped_coordinates_are_fixed_and_counted():
    cleaned = _clean([{"case_id": "S", "registered_at": "2024-01-02", "lon": "23.105",
                       "lat": "113.305"}])
    assert cleaned.swapped_fixed == 1
    assert cleaned.frame.iloc[0][["lon", "lat"]].tolist() == [113.305, 23.105]


def test_derived_status_deadline_rating_state_and_hashed_id():
    cleaned = _clean([
        {"case_id": "A", "registered_at": "2024-01-01", "accepted_at": "2024-01-03",
         "replied_at": "2024-01-10", "是否延期": None, "petitioner_id": "44010319900101123x"},
        {"case_id": "B", "registered_at": "2024-01-01", "accepted_at": "2024-01-03",
         "extended": "是", "closed_at": "2024-03-20", "rating": "满意"},
        {"case_id": "C", "registered_at": "2024-03-25"},
    ])
    f = cleaned.frame
    assert f["status"].tolist() == ["replied", "closed", "registered"]
    assert str(f.loc[0, "due_at"]) == "2024-03-03 00:00:00"  # 受理 + 60 days
    assert str(f.loc[1, "due_at"]) == "2024-04-02 00:00:00"  # + 30 when extended
    # as of = the file's newest timestamp (2024-03-25): A replied 01-10, window 30 days
    assert f["rating_state"].tolist() == ["超期未评价", "已评价", "待评价"]
    assert f.loc[0, "petitioner_id_hash"] == hash_id_number("44010319900101123X",
                                                            salt=Settings().id_hash_salt)
    assert "petitioner_id" not in f.columns


def test_docs_columns_tables_are_generated_from_the_registries():
    """docs/columns.md lists every canonical column, alias and reject reason (python -m etl.columns)."""
    from pathlib import Path

    from etl.columns import columns_markdown
    from etl.reasons import reasons_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "columns.md").read_text(encoding="utf-8")
    for section, table in {**columns_markdown(), "reasons": reasons_markdown()}.items():
        block = f"<!-- columns:{section} -->\n{table}\n<!-- /columns:{section} -->"
        assert block in doc, f"docs/columns.md section {section} is stale: run python -m etl.columns"


def test_new_lifecycle_columns_come_under_their_chinese_headers_and_are_validated(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(
        "信访件编号,登记时间,受理时间,是否延期,延期批准时间,答复时间,评价时间,满意度,复查意见时间,"
        "复核时间,积案交办时间,涉及人数\n"
        "L1,2024-01-02,2024-01-03,是,2024-02-20,2024-03-20,2024-03-25,不满意,2024-04-20,"
        "2024-05-20,2024-04-01,3\n"
        "L2,2024-01-02,2024-01-03,,,2024-01-20,,,,,,两人\n"
        "L3,2024-01-02,2024-01-03,,,2024-01-20,,,2024-01-10,,,1\n", encoding="utf-8")
    raw = read_source(path).frame
    mapped = canonical_headers([c for c in raw.columns if c != "_line"])
    assert {"extended_at", "reviewed_at", "rechecked_at", "backlog_at",
            "people_count"} <= set(mapped.values())
    frame = raw[list(mapped)].rename(columns=mapped)
    cleaned = clean.clean_cases(frame, settings=Settings(), crs="wgs84", extent=None)
    row = cleaned.frame.loc[0]
    assert str(row["extended_at"]) == "2024-02-20 00:00:00"
    assert str(row["due_at"]) == "2024-04-02 00:00:00"  # 受理 + 60 + 30 (延期)
    assert (str(row["reviewed_at"]), str(row["rechecked_at"])) == ("2024-04-20 00:00:00",
                                                                   "2024-05-20 00:00:00")
    assert str(row["backlog_at"]) == "2024-04-01 00:00:00" and row["people_count"] == 3
    reasons = cleaned.rejects.set_index("pos")["reason"].to_dict()
    assert reasons == {1: "涉及人数应为 1 至 100000 的整数：两人",
                       2: "复查时间早于答复时间：2024-01-10 00:00"}
    assert cleaned.frame.index.tolist() == [0]
