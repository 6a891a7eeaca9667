"""Exports that cannot attack: no formula cell, valid workbooks whatever the text, all or nothing."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from geo import tabular
from geo.tabular import csv_chunks, safe_text, write_csv, write_xlsx
from tests.hostile import PAYLOADS

FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
            "=HYPERLINK(\"http://127.0.0.1:9/\",\"点击\")", "=cmd|' /C calc'!A0"]


def _frame() -> pd.DataFrame:
    texts = FORMULAS + list(PAYLOADS)
    return pd.DataFrame({
        "承办单位": texts,
        "数值": [(-5, 3.5, 0)[i % 3] for i in range(len(texts))],
        "文本数字": [("-5", "+3.2", "1e3")[i % 3] for i in range(len(texts))],
        "=表头": ["x"] * len(texts),
    })


def test_formula_like_text_gets_an_apostrophe_but_numbers_stay_numbers():
    for text in FORMULAS:
        assert safe_text(text) == "'" + text
    assert safe_text(-5) == -5 and safe_text(3.5) == 3.5 and safe_text("-5") == "-5"
    assert safe_text("+3.2") == "+3.2" and safe_text(float("nan")) is None
    assert safe_text("普通文本") == "普通文本"


def test_xlsx_has_no_formula_cell_and_nul_still_gives_a_valid_workbook(tmp_path):
    frame = _frame()
    assert any("\x00" in t for t in frame["承办单位"])  # the corpus holds a NUL
    target = tmp_path / "out.xlsx"
    assert write_xlsx({"案件": [frame]}, target) == len(frame)
    sheet = load_workbook(target)["案件"]  # opens: the workbook is valid
    cells = [c for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert not [t for t in texts if t.startswith(("=", "+", "@", "\t", "\r"))
                and not tabular._NUMBER.match(t)]
    assert all("\x00" not in t for t in texts)
    numbers = [sheet.cell(row=r, column=2).value for r in range(2, 5)]
    assert numbers == [-5, 3.5, 0]  # real numbers are written as numbers
    assert sheet.cell(row=1, column=4).value == "'=表头"  # headers are neutralised too
    back = pd.read_excel(target, dtype=str)
    assert back["承办单位"].iloc[0] == "'=1+1"


def test_csv_neutralises_formulas_and_drops_nul(tmp_path):
    frame = _frame()
    target = tmp_path / "out.csv"
    write_csv([frame.iloc[:20], frame.iloc[20:]], target)
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\x00" not in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(frame) + 1
    cells = [v for row in rows for v in row]
    assert not [v for v in cells if v.startswith(("=", "+", "-", "@", "\t", "\r"))
                and not tabular._NUMBER.match(v)]
    assert rows[1][0] == "'=1+1" and rows[1][2] == "-5"
    streamed = b"".join(csv_chunks([frame])).decode("utf-8").lstrip("\ufeff")
    assert streamed.replace("\r\n", "\n") == raw.decode("utf-8-sig").replace("\r\n", "\n")


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_a_failed_export_leaves_no_file(tmp_path, suffix):
    def frames():
        yield _frame()
        raise RuntimeError("the database went away")

    target = tmp_path / f"cases.{suffix}"
    target_before = tmp_path / f"old.{suffix}"
    with pytest.raises(RuntimeError):
        if suffix == "csv":
            write_csv(frames(), target)
        else:
            write_xlsx({"案件": frames()}, target)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    # an existing file is not touched by a failed rewrite
    target_before.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError):
        if suffix == "csv":
            write_csv(frames(), target_before)
        else:
            write_xlsx({"案件": frames()}, target_before)
    assert target_before.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == [target_before.name]


def test_too_many_rows_for_one_sheet_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "XLSX_MAX_ROWS", 10)
    target = tmp_path / "big.xlsx"
    with pytest.raises(ValueError, match="CSV"):
        write_xlsx({"案件": [_frame()]}, target)
    assert list(tmp_path.iterdir()) == []


def test_csv_rows_by_column_equal_the_per_value_rule():
    """The column-wise cells (the export's fast path) are exactly ``_csv_cell`` of each value."""
    from geo.tabular import csv_rows

    frame = pd.DataFrame({
        "text": ["=1+1", "-5", "x\x00y", None, "普通", "+3.2", "@x", "\tz", ""],
        "int": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "float": [1.5, np.nan, 2.0, 3.25, 1e20, -0.0, np.nan, 7.0, 1 / 3],
        "when": pd.to_datetime(["2026-01-01", "2026-01-01 10:05", None, "2026-02-02 00:00",
                                "2026-02-02 00:01", None, "2026-03-03", "2026-03-03 23:59",
                                "2026-03-03"], format="ISO8601"),
        "flag": [True, False] * 4 + [True],
        "arrow": pd.array(["x", None, "=y", "1", "-1", "a", "b", "c", "d"], dtype="str"),
        "category": pd.Categorical(["a", None, "=b", "a", "a", "a", "a", "a", "a"]),
        "nullable": pd.array([1, None, 3, 4, 5, 6, 7, 8, 9], dtype="Int64"),
        "mixed": [pd.Timestamp("2026-01-01"), None, 3, "s", 2.5, np.nan, pd.NaT, None, "=x"],
        "seconds": pd.to_datetime(["2026-01-01 10:05:30"] * 9),
        "int32": np.arange(9, dtype=np.int32), "float32": np.full(9, 1.5, dtype=np.float32),
        "lonlat": pd.Series([113.25, np.nan, None, 23.1, -0.5, 1e-7, 113.0, np.nan, 2.0],
                            dtype=object),  # the export's 经度/纬度: floats in an object column
        "before_1970": pd.to_datetime(["1969-12-31 23:59:30", "1900-01-01", None,
                                       "1969-12-31", "1970-01-01 00:00:59", "2262-04-11",
                                       "1677-09-22 00:01", "2000-02-29 12:00", "1999-12-31"],
                                      format="ISO8601"),
    })

    def written(rows):
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue()

    expected = [[tabular._csv_cell(v) for v in r] for r in frame.itertuples(index=False, name=None)]
    assert written(csv_rows(frame)) == written(expected)
    assert "'=1+1" in written(csv_rows(frame)) and "'=b" in written(csv_rows(frame))
    assert list(csv_rows(frame.iloc[:0])) == []  # an empty export (no case in scope) has no row
