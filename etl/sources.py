"""Read case and station files into one shape: a frame of raw values plus line numbers.

Supported sources (数据来源): CSV (UTF-8, UTF-8 with BOM, GBK/GB18030, detected by
strict decoding in that order), XLSX (first sheet), JSON (a list of records or
``{"records": [...]}``), GeoJSON (point features; the geometry gives lon/lat) and
Open311 GeoReport v2 ``requests`` JSON (mapped to the canonical columns here).

Every frame carries ``_line``: the line of a CSV file (header = line 1; a quoted
value spanning lines shifts the numbering), the row of an XLSX sheet, or the 1-based
record number of a JSON file, so a clerk can find a rejected row in the original.
Values are kept as the source gave them (text, or typed XLSX cells turned into text)
so rejects can show them verbatim; :mod:`etl.clean` does all parsing.

A broken row never refuses the file: a CSV line with a field too many or too few, a line
whose bytes are not text in the file's encoding, or a GeoJSON feature that is not a
feature with a ``[lon, lat]`` point becomes a row of the frame marked in ``_problem``
(reason code) and ``_problem_reason`` (message), with whatever values could be read, so
the ingest rejects it with its line number and loads the rest.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.reasons import reason_text
from geo.errors import SourceError

LINE = "_line"
PROBLEM = "_problem"
PROBLEM_REASON = "_problem_reason"
BOOKKEEPING_COLUMNS = (LINE, PROBLEM, PROBLEM_REASON)
"""Columns a reader adds to the source's own (never mapped to a canonical column)."""
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gbk", "gb18030")
"""Tried strictly in this order; UTF-8 with or without BOM is the first try."""

OPEN311_COLUMNS: dict[str, str] = {
    "service_request_id": "case_id",
    "requested_datetime": "registered_at",
    "expected_datetime": "due_at",
    "service_name": "category",
    "agency_responsible": "handling_unit",
    "address": "address",
    "description": "description",
    "lat": "lat",
    "long": "lon",
    "status_notes": "status_notes",
}


@dataclass
class Source:
    """A file read into raw values.

    Attributes
    ----------
    frame
        One row per record, the source's own headers, plus ``_line``.
    sha256
        Hash of the file's bytes (the run ledger keeps it).
    kind
        csv, xlsx, json, geojson or open311.
    encoding
        The text encoding detected (CSV/JSON), else None.
    """

    frame: pd.DataFrame
    sha256: str
    kind: str
    encoding: str | None = None


def read_source(path: str | Path) -> Source:
    """Read a case or station file, choosing the reader from its content and suffix.

    Raises
    ------
    SourceError
        When the file cannot be read or decoded, or holds no table (bilingual message).
    """
    path = Path(path)
    data = _read_bytes(path)
    with ThreadPoolExecutor(1) as pool:  # hashlib releases the GIL: hash while parsing
        sha = pool.submit(lambda: hashlib.sha256(data).hexdigest())
        source = _read_data(path, data)
    source.sha256 = sha.result()
    return source


def problem_rejects(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejects (pos, reason_code, reason) of the rows a reader marked as broken."""
    if PROBLEM not in frame.columns:
        return pd.DataFrame(columns=["pos", "reason_code", "reason"])
    marked = frame[PROBLEM].notna().to_numpy()
    positions = np.flatnonzero(marked)
    return pd.DataFrame({"pos": positions, "reason_code": frame[PROBLEM].to_numpy()[positions],
                         "reason": frame[PROBLEM_REASON].to_numpy()[positions]})


def source_headers(frame: pd.DataFrame) -> list[str]:
    """The source's own headers (without the reader's bookkeeping columns)."""
    return [c for c in frame.columns if c not in BOOKKEEPING_COLUMNS]


def numbered_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give an in-memory frame the ``_line`` column a file read would have given it.

    Line numbers are the row position + 2 (as if the frame had been a CSV with a header
    line), so rejects of a frame ingest point at the same lines as rejects of its CSV
    export; a frame that already carries ``_line`` keeps it.
    """
    frame = frame.reset_index(drop=True)
    if LINE not in frame.columns:
        frame = frame.assign(**{LINE: np.arange(2, len(frame) + 2)})
    return frame


def _read_data(path: Path, data: bytes) -> Source:
    """Parse the bytes; ``sha256`` is filled in by the caller."""
    sha = ""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm") or data[:2] == b"PK":
        frame = _read_xlsx(path, data)
        return Source(_require_rows(frame, path), sha, "xlsx")
    start = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if suffix in (".json", ".geojson") or start in (b"[", b"{"):
        text, encoding = _decode(data, path)
        frame, kind = _read_json(text, path)
        return Source(_require_rows(frame, path), sha, kind, encoding)
    frame, encoding = _read_csv(data, path)
    return Source(_require_rows(frame, path), sha, "csv", encoding)


# -- readers -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(
            f"文件无法读取：{path}（{exc.strerror}）/ cannot read {path}: {exc.strerror}"
        ) from exc


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SourceError(
        f"文件编码无法识别（既不是 UTF-8 也不是 GBK/GB18030）：{path} / "
        f"{path} is neither UTF-8 nor GBK/GB18030 text; save it as UTF-8 CSV or XLSX"
    )


def _read_csv(data: bytes, path: Path) -> tuple[pd.DataFrame, str]:
    """Parse CSV with pyarrow (fast, multi-threaded), every column as text.

    UTF-8 (with or without BOM) is parsed straight from the bytes, pyarrow validating
    it; only when that fails is the file decoded strictly as GBK, then GB18030. A file
    that decodes in none of them, or has ragged lines or blank lines, takes the careful
    path (:func:`_read_csv_lines`): line by line, broken lines marked, the rest parsed.
    """
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    body = data[3:] if encoding == "utf-8-sig" else data
    head = body[: 1 << 16]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the window's edge
            return _read_csv_text(data, path)
    try:
        return _parse_csv(body, path), encoding
    except _NotUtf8:
        return _read_csv_text(data, path)
    except _NeedsCare:
        return _read_csv_lines(body, path, encoding)


class _NotUtf8(Exception):
    pass


class _NeedsCare(Exception):
    """Ragged or blank lines: the fast parse cannot number the rows."""


def _read_csv_text(data: bytes, path: Path) -> tuple[pd.DataFrame, str]:
    for encoding in ENCODINGS[1:]:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        try:
            return _parse_csv(text.lstrip("\ufeff").encode("utf-8"), path), encoding
        except _NeedsCare:
            return _read_csv_lines(text.lstrip("\ufeff").encode("utf-8"), path, encoding)
    encoding = _likeliest_encoding(data, path)
    return _read_csv_lines(data, path, encoding)


def _parse_csv(body: bytes, path: Path) -> pd.DataFrame:
    headers = _csv_headers(body, path)
    names = _unique_names(headers)
    ragged: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        ragged.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1,
                                           block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names},  # pandas' own type
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, ValueError) as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise _NotUtf8 from exc
        raise SourceError(
            f"CSV 文件格式有误：{path}（{exc}）/ {path} is not a well-formed CSV file: {exc}"
        ) from exc
    if ragged or _has_blank_line(body):
        raise _NeedsCare
    # one chunk per column: selecting rows of a many-chunk column later costs ~5x more
    frame = table.combine_chunks().to_pandas()
    frame.columns = headers if len(set(headers)) == len(headers) else names
    frame[LINE] = np.arange(2, len(frame) + 2)
    return frame


BLANK_LINE = r"\n\r?\n"
"""An empty line (LF or CRLF endings): pyarrow skips it, so the rows could not be numbered."""
_SCAN_WINDOW = 1 << 30


def _has_blank_line(body: bytes) -> bool:
    """True when ``body`` holds an empty line (``\\n\\n`` or ``\\n\\r\\n``).

    Searched by Arrow's RE2 on the bytes in place, without the GIL: about 0.07 s for a
    440 MB file, where two ``in`` tests of the Python bytes took 0.9 s (a tenth of the whole
    read). Searched in windows of 1 GiB, so no single text nears 2 GiB (RE2 measures texts
    in ``int``); a blank line across a window's edge is looked for at each edge.
    """
    data = pa.py_buffer(body)
    bounds = list(range(0, len(body), _SCAN_WINDOW)) + [len(body)]
    offsets = pa.py_buffer(np.asarray(bounds, dtype=np.int64))
    windows = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(bounds) - 1,
                                               [None, offsets, data])
    if pc.any(pc.match_substring_regex(windows, BLANK_LINE)).as_py():
        return True
    edges = (body[max(0, edge - 2):edge + 2] for edge in bounds[1:-1])
    return any(b"\n\n" in around or b"\n\r\n" in around for around in edges)


def _csv_headers(body: bytes, path: Path) -> list[str]:
    end = body.find(b"\n")
    first_line = (body if end < 0 else body[:end]).rstrip(b"\r")
    try:
        first = first_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _NotUtf8 from exc
    if not first.strip():
        raise SourceError(f"文件第一行没有列名：{path} / {path} has no header line")
    return next(csv.reader([first]))


def _likeliest_encoding(data: bytes, path: Path) -> str:
    """The encoding in which the fewest lines fail to decode (UTF-8 first at a tie)."""
    lines = data.split(b"\n")
    failures = {}
    for encoding in ENCODINGS:
        bad = 0
        for line in lines:
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                bad += 1
                if bad > len(lines) // 2:
                    break
        failures[encoding] = bad
    best = min(ENCODINGS, key=lambda e: failures[e])
    if failures[best] > max(1, len(lines) // 2):
        raise SourceError(
            f"文件编码无法识别（既不是 UTF-8 也不是 GBK/GB18030）：{path} / {path} is neither "
            "UTF-8 nor GBK/GB18030 text; save it as UTF-8 CSV or XLSX")
    return best


def _read_csv_lines(body: bytes, path: Path, encoding: str) -> tuple[pd.DataFrame, str]:
    """The careful path: number every line, mark ragged and undecodable ones, parse the rest.

    ``body`` is in ``encoding`` (UTF-8 once re-encoded). Each line is one record (values
    spanning lines are not supported, as in the fast path); blank lines are skipped but
    counted, so line numbers are the file's.
    """
    codec = "utf-8" if encoding in ("utf-8", "utf-8-sig") else encoding
    raw_lines = body.split(b"\n")
    if raw_lines and raw_lines[0].startswith(b"\xef\xbb\xbf"):
        raw_lines[0] = raw_lines[0][3:]
    try:
        header_text = raw_lines[0].rstrip(b"\r").decode(codec)
    except (UnicodeDecodeError, IndexError):
        raise SourceError(f"文件第一行（列名）无法解码：{path} / the header line of {path} is "
                          f"not {encoding} text") from None
    if not header_text.strip():
        raise SourceError(f"文件第一行没有列名：{path} / {path} has no header line")
    headers = next(csv.reader([header_text]))
    width = len(headers)
    good, good_lines, records = [], [], []
    for number, raw in enumerate(raw_lines[1:], start=2):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            fields = next(csv.reader([raw.decode(codec, errors="replace")]), [])
            records.append((number, fields, "undecodable",
                            reason_text("undecodable", value=encoding.upper())))
            continue
        fields = next(csv.reader([text]), [])
        if len(fields) != width:
            records.append((number, fields, "ragged_row",
                            reason_text("ragged_row", value=len(fields), limit=width)))
            continue
        good.append(text)
        good_lines.append(number)
    names = _unique_names(headers)
    if good:
        table = pacsv.read_csv(
            pa.BufferReader("\n".join([header_text, *good]).encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True))
        frame = table.to_pandas()
    else:
        frame = pd.DataFrame({n: pd.Series(dtype="str") for n in names})
    frame[LINE] = good_lines
    if records:
        bad = pd.DataFrame([dict(zip(names, fields[:width])) for _n, fields, _c, _r in records],
                           columns=names)
        bad[LINE] = [r[0] for r in records]
        bad[PROBLEM] = [r[2] for r in records]
        bad[PROBLEM_REASON] = [r[3] for r in records]
        frame = pd.concat([frame, bad], ignore_index=True).sort_values(LINE, kind="stable")
        frame = frame.reset_index(drop=True)
    frame.columns = [*(headers if len(set(headers)) == len(headers) else names),
                     *frame.columns[width:]]
    return frame, encoding


def _read_xlsx(path: Path, data: bytes) -> pd.DataFrame:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise SourceError(
            f"Excel 文件无法打开：{path}（{exc}）/ cannot open {path} as XLSX: {exc}"
        ) from exc
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        book.close()
        return pd.DataFrame()
    headers = _unique_names(["" if h is None else str(h).strip() for h in header])
    records, lines = [], []
    for line, row in enumerate(rows, start=2):
        if row is None or all(v is None or v == "" for v in row):
            continue
        records.append([_cell_text(v) for v in row[: len(headers)]])
        lines.append(line)
    book.close()
    frame = pd.DataFrame(records, columns=headers[: max((len(r) for r in records), default=0)]
                         or headers)
    frame = frame.reindex(columns=headers)
    frame[LINE] = lines
    return frame


def _cell_text(value: object) -> str | None:
    """Turn a typed cell into the text a clerk sees (dates ISO, whole numbers without .0)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def _read_json(text: str, path: Path) -> tuple[pd.DataFrame, str]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SourceError(
            f"JSON 文件格式有误：{path}（{exc}）/ {path} is not valid JSON: {exc}"
        ) from exc
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        if not isinstance(features, list):
            raise SourceError(f"GeoJSON 的 features 应为列表：{path} / {path}: features must be "
                              "a list")
        return _geojson_records(features), "geojson"
    if isinstance(doc, dict):
        doc = doc.get("records", doc.get("requests", doc.get("data")))
    if not isinstance(doc, list) or (doc and not any(isinstance(r, dict) for r in doc)):
        raise SourceError(
            f"JSON 文件应为记录列表或 {{\"records\": [...]}}：{path} / {path} must hold a list "
            'of records or {"records": [...]}'
        )
    problems = [None if isinstance(r, dict) else reason_text("bad_record", value=(
        f"第{i}条记录不是对象：{_preview(r)} / record {i} is not an object"))
        for i, r in enumerate(doc, start=1)]
    frame = pd.DataFrame.from_records([r if isinstance(r, dict) else {} for r in doc])
    frame = frame.astype(object).where(frame.notna(), None).map(_json_text)
    kind = "json"
    if "service_request_id" in frame.columns and "requested_datetime" in frame.columns:
        frame, kind = _open311(frame), "open311"
    frame[LINE] = range(1, len(frame) + 1)
    if any(p is not None for p in problems):
        frame[PROBLEM] = ["bad_record" if p else None for p in problems]
        frame[PROBLEM_REASON] = problems
    return frame, kind


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _geojson_records(features: list) -> pd.DataFrame:
    """Properties of each feature, lon/lat from its Point; a broken feature is marked."""
    rows = []
    for number, feature in enumerate(features, start=1):
        props, problem = _feature_values(feature, number)
        if problem is not None:
            props[PROBLEM], props[PROBLEM_REASON] = "bad_feature", problem
        rows.append(props)
    frame = pd.DataFrame.from_records(rows)
    frame = frame.astype(object).where(frame.notna(), None).map(_json_text)
    frame[LINE] = range(1, len(frame) + 1)
    return frame


def _feature_values(feature: object, number: int) -> tuple[dict, str | None]:
    """(properties with lon/lat, None) of a feature, or (what could be read, the problem)."""
    if not isinstance(feature, dict):
        return {}, reason_text("bad_feature", value=(
            f"第{number}个要素不是对象：{_preview(feature)} / feature {number} is not an object"))
    props = feature.get("properties")
    if props is not None and not isinstance(props, dict):
        return {}, reason_text("bad_feature", value=(
            f"第{number}个要素的 properties 不是对象 / feature {number}: properties is not an "
            "object"))
    props = dict(props or {})
    geometry = feature.get("geometry")
    if geometry is None:
        return props, None  # no point: attached by code or address
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else _preview(geometry)
        return props, reason_text("bad_feature", value=(
            f"第{number}个要素的几何不是点（{kind}）/ feature {number}: geometry must be a Point, "
            f"not {kind}"))
    coords = geometry.get("coordinates")
    if (not isinstance(coords, list) or len(coords) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2])):
        return props, reason_text("bad_feature", value=(
            f"第{number}个要素的坐标应为 [经度, 纬度] 两个数字，实为 {_preview(coords)} / feature "
            f"{number}: coordinates must be [lon, lat] numbers, got {_preview(coords)}"))
    props["lon"], props["lat"] = coords[0], coords[1]
    return props, None


def _preview(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _open311(frame: pd.DataFrame) -> pd.DataFrame:
    """Map GeoReport v2 request fields onto canonical columns.

    ``status`` open/closed: a closed request's ``updated_datetime`` is its 办结时间;
    an open one keeps it out (it is only the last touch).
    """
    out = pd.DataFrame({canon: frame[src] for src, canon in OPEN311_COLUMNS.items()
                        if src in frame.columns})
    status = frame.get("status", pd.Series(None, index=frame.index, dtype=object))
    closed = status.astype(str).str.lower().eq("closed")
    out["status"] = status
    if "updated_datetime" in frame.columns:
        out["closed_at"] = frame["updated_datetime"].where(closed, None)
    return out


def _unique_names(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for i, h in enumerate(headers):
        name = h if h else f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _require_rows(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    own = [c for c in frame.columns if c not in BOOKKEEPING_COLUMNS]
    if not own and not (PROBLEM in frame.columns and len(frame)):
        raise SourceError(f"文件中没有数据列：{path} / {path} holds no columns")
    return frame
