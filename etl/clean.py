"""Turn raw case values into typed, validated, derived columns, column by column.

Everything here is vectorised over the whole file (pandas/numpy): a 1,000,000-row
export is cleaned in a few seconds. Each rule that can refuse a row returns a
reason code and a message in Chinese a clerk can act on (:data:`REASONS`).

Decisions (documented in docs/columns.md):

* A row without 信访件编号 or 登记时间, or with a timestamp that cannot be read, is
  rejected; so is a row whose 受理/答复/办结 time lies before its 登记时间.
* Coordinates that are not numbers, come as only one of the pair, or lie outside the
  grid's extent (grown by ``nearest_max_m``) are dropped *provisionally*: if the row
  can still be attached by its code or address it is kept (attached by code/address,
  "nothing lost"); only when that fails too is it rejected with the coordinate reason.
* Latitude and longitude given the wrong way round (the swapped pair falls in the grid,
  the given one does not) are swapped back and counted.
* The same 信访件编号 twice in one file: the last row wins (a later line is a later
  state of the case); the earlier rows are rejected as ``duplicate_in_file``.
* The ID number is hashed (salted SHA-256) and the raw number dropped here, before
  anything is stored or logged.
"""

from __future__ import annotations

import binascii
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl import columns as cols
from geo.crs import from_wgs84, to_wgs84
from geo.errors import CRSError
from geo.settings import Settings
from geo.vocab import CRS_SYSTEMS

REASONS: dict[str, str] = {
    "missing_case_id": "缺少信访件编号",
    "missing_registered_at": "缺少登记时间",
    "bad_date": "{label}无法识别：{value}",
    "date_order": "{label}早于登记时间：{value}",
    "bad_coordinates": "经纬度不是有效数字，且无法按区划代码或地址落格：{value}",
    "out_of_extent": "坐标不在网格范围内，且无法按区划代码或地址落格：{value}",
    "duplicate_in_file": "同一文件中信访件编号重复（保留最后一行）",
    "missing_station_id": "缺少站点编号",
    "missing_name": "缺少站点名称",
    "bad_station_type": (
        "站点类型无法识别：{value}（应为区信访超市/镇街综治中心/村居服务站/人民调解工作室）"
    ),
    "missing_coordinates": "缺少经纬度（服务站点必须有位置）",
    "bad_people_count": "涉及人数应为 1 至 100000 的整数：{value}",
}
"""Every reject reason code and its Chinese message template."""

TIMESTAMP_LABELS: dict[str, str] = {
    "registered_at": "登记时间", "transferred_at": "转送/交办时间", "accepted_at": "受理时间",
    "due_at": "办理期限", "replied_at": "答复时间", "closed_at": "办结时间",
    "followed_up_at": "回访时间", "rated_at": "评价时间", "extended_at": "延期时间",
    "reviewed_at": "复查时间", "rechecked_at": "复核时间", "backlog_at": "列为积案时间",
}

_EXCEL_EPOCH = np.datetime64("1899-12-30")
_YEAR_MIN, _YEAR_MAX = 1990, 2100
_SWAP_MARGIN_DEG = 0.05  # GCJ-02/BD-09 shift the grid by well under 1 km
_FAST_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y-%m-%d %H:%M")
_SLOW_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y%m%d", "%Y%m%d%H%M%S")


@dataclass
class Extent:
    """The grid's bounding box in WGS-84 (minx, miny, maxx, maxy)."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    def contains(self, lon: np.ndarray, lat: np.ndarray, *, margin_m: float = 0.0) -> np.ndarray:
        """Return True where the point lies in the box grown by ``margin_m`` metres."""
        dy = margin_m / 111_000.0
        dx = dy / max(np.cos(np.radians((self.miny + self.maxy) / 2)), 0.1)
        with np.errstate(invalid="ignore"):
            return ((lon >= self.minx - dx) & (lon <= self.maxx + dx)
                    & (lat >= self.miny - dy) & (lat <= self.maxy + dy))


@dataclass
class Cleaned:
    """Outcome of cleaning: typed rows, rejects and the provisional coordinate problems.

    Attributes
    ----------
    frame
        Typed canonical columns for every row still in play (index = source position).
    rejects
        Rows refused outright: columns pos, reason_code, reason.
    coord_problems
        Rows whose coordinates were dropped: pos, reason_code, reason. They become
        rejects only if attaching by code/address fails.
    swapped_fixed
        Rows whose latitude and longitude were swapped back.
    """

    frame: pd.DataFrame
    rejects: pd.DataFrame
    coord_problems: pd.DataFrame
    swapped_fixed: int = 0
    keep: np.ndarray | None = None
    """With ``drop_rejected=False``: True for the rows still in play (``frame`` then
    holds every row, so the caller can drop all its rejects with one selection)."""


def clean_cases(
    frame: pd.DataFrame,
    *,
    settings: Settings,
    crs: str,
    extent: Extent | None,
    drop_rejected: bool = True,
) -> Cleaned:
    """Type, validate and derive every case column (see the module docstring for the rules).

    Parameters
    ----------
    frame
        Canonical columns (raw text or typed values), index = source position.
    crs
        The system the file's coordinates are in: wgs84, gcj02 or bd09.
    extent
        The grid's box; None when no grid is loaded (no extent check, no swap check).
    drop_rejected
        False: keep rejected rows in ``frame`` and mark the others in ``keep`` (selecting
        rows of a million-row frame costs about a second; the ingest does it once).

    Returns
    -------
    Cleaned
    """
    check_crs(crs)
    rejects: list[pd.DataFrame] = []
    out: dict[str, pd.Series | np.ndarray] = {}  # columns, framed once at the end
    # coordinates (numpy) and text values (Arrow) mostly run without the GIL: threads
    # overlap them with the timestamps
    with ThreadPoolExecutor(2) as pool:
        coordinates = pool.submit(clean_coordinates, frame, crs=crs, extent=extent,
                                  settings=settings)
        text_values: dict[str, pd.Series] = {}
        values = pool.submit(_clean_values, frame, text_values, settings)
        out["case_id"] = text_column(frame.get("case_id"), frame.index)
        rejects.append(reject_positions(frame.index[out["case_id"].isna()], "missing_case_id"))
        _clean_timestamps(frame, out, rejects)
        values.result()
        bad_count = text_values.pop("_bad_people_count")
        if bad_count.any():
            raw = frame["people_count"][bad_count].astype("str")
            rejects.append(pd.DataFrame({
                "pos": raw.index, "reason_code": "bad_people_count",
                "reason": [reason_text("bad_people_count", value=v) for v in raw]}))
        out.update(text_values)
        lon, lat, coord_problems, swapped = coordinates.result()
    out["lon"], out["lat"] = lon, lat
    _derive(out, settings, frame.index)
    out = pd.DataFrame(out, index=frame.index)
    rejected = pd.concat(rejects, ignore_index=True).drop_duplicates("pos", keep="first")
    keep = ~out.index.isin(rejected["pos"])
    duplicates = _duplicates(out["case_id"][keep])
    rejected = pd.concat([rejected, duplicates], ignore_index=True)
    keep &= ~out.index.isin(duplicates["pos"])
    coord_problems = coord_problems[coord_problems["pos"].isin(out.index[keep])]
    if not drop_rejected:
        return Cleaned(out, rejected, coord_problems, swapped, keep=keep)
    return Cleaned(out[keep], rejected, coord_problems, swapped)


def parse_timestamps(values: pd.Series | None, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Parse timestamps written in any of the usual ways, as naive Asia/Shanghai time.

    Accepts ``2024-03-01 08:30:00``, ``2024/3/1 8:30``, ``2024年3月1日``, ``20240301``,
    ISO 8601 with an offset or ``Z`` (converted to Asia/Shanghai), Excel serial day
    numbers (``45352.35``) and already-typed datetimes. Only the values the fast formats
    miss take the slower paths.

    Returns
    -------
    parsed : Series of datetime64[us]
        NaT where empty or unreadable.
    bad : Series of bool
        True where a non-empty value could not be read (or lies outside 1990–2100).
    """
    if values is None:
        return pd.Series(pd.NaT, index=index, dtype="datetime64[us]"), pd.Series(False, index)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = _naive_local(values)
        return parsed, pd.Series(False, index=index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        parsed = _excel_serial(values.astype(float))
        return parsed, values.notna() & parsed.isna()
    text = values.astype("str").str.strip().where(values.notna())
    text = text.where(text != "")
    present = text.notna()
    # the common spelling on the whole column at once; the other formats on what is left
    parsed = pd.to_datetime(text, format=_FAST_FORMATS[0], errors="coerce").astype(
        "datetime64[us]")
    todo = present & parsed.isna()
    for fmt in _FAST_FORMATS[1:]:
        if not todo.any():
            break
        got = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        parsed.loc[todo] = got.astype("datetime64[us]")
        todo &= parsed.isna()
    if todo.any():
        parsed.loc[todo] = _parse_slow(text[todo])
    bad_year = (parsed < pd.Timestamp(_YEAR_MIN, 1, 1)) | (
        parsed >= pd.Timestamp(_YEAR_MAX + 1, 1, 1))
    parsed = parsed.where(~bad_year)
    return parsed, present & parsed.isna()


def hash_id_numbers(values: pd.Series, *, salt: str) -> pd.Series:
    """Salted SHA-256 of each ID number (the raw number is not kept).

    Same normalisation as :func:`geo.privacy.hash_id_number` (upper-case, no spaces),
    so hashes agree with every other writer; the normalisation runs in Arrow, only the
    SHA-256 itself is a Python call per number.
    """
    text = values.astype("str")
    arr = pa.chunked_array([pa.array(text.array, type=pa.large_string())])
    arr = pc.replace_substring(pc.utf8_upper(pc.utf8_trim_whitespace(arr)), " ", "")
    given = pc.fill_null(pc.greater(pc.utf8_length(arr), 0), False)
    salted = pc.binary_join_element_wise(pa.scalar(salt + ":", pa.large_string()),
                                         pc.filter(arr, given), pa.scalar("", pa.large_string()))
    sha = hashlib.sha256
    digests = b"".join([sha(v).digest() for v in salted.cast(pa.large_binary()).to_pylist()])
    hexed = np.frombuffer(binascii.hexlify(digests), dtype="S64").astype(object)
    hashed = np.full(len(values), None, dtype=object)
    hashed[given.to_numpy(zero_copy_only=False)] = hexed
    arr = pc.cast(pa.array(hashed, type=pa.large_binary()), pa.large_string())
    return pd.Series(pd.array(arr, dtype="str"), index=values.index)


def reason_text(code: str, *, label: str = "", value: object = "") -> str:
    """Fill a reason template: the Chinese message a clerk reads for a rejected row."""
    return REASONS[code].format(label=label, value=value)


# -- steps ---------------------------------------------------------------------------------


def check_crs(crs: str) -> None:
    """Raise CRSError unless ``crs`` is one of geo.vocab.CRS_SYSTEMS."""
    if crs not in CRS_SYSTEMS:
        raise CRSError(
            f"坐标系应为 wgs84、gcj02 或 bd09，收到 {crs!r} / --crs must be wgs84, gcj02 or bd09"
        )


def text_column(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """Return stripped text, empty → missing; whole floats lose their '.0' (Excel ids)."""
    if values is None:
        return pd.Series(None, index=index, dtype="str")
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & (values % 1 == 0)
        text = values.astype("str").where(~whole, values.fillna(0).astype("int64").astype("str"))
        return text.where(values.notna())
    text = values.astype("str").str.strip()
    return text.where(values.notna() & (text != ""))


def _clean_timestamps(frame: pd.DataFrame, out: dict, rejects: list) -> None:
    for column in cols.TIMESTAMP_COLUMNS:
        parsed, bad = parse_timestamps(frame.get(column), frame.index)
        out[column] = parsed
        if bad.any():
            label = TIMESTAMP_LABELS[column]
            raw = frame[column][bad].astype("str")
            rejects.append(pd.DataFrame({
                "pos": raw.index, "reason_code": "bad_date",
                "reason": [reason_text("bad_date", label=label, value=v) for v in raw],
            }))
    missing = out["registered_at"].isna() & ~_had_value(frame.get("registered_at"), frame.index)
    rejects.append(reject_positions(frame.index[missing], "missing_registered_at"))
    for column in ("accepted_at", "replied_at", "closed_at"):
        early = out[column] < out["registered_at"] - pd.Timedelta(minutes=1)
        if early.any():
            label = TIMESTAMP_LABELS[column]
            values = out[column][early].dt.strftime("%Y-%m-%d %H:%M")
            rejects.append(pd.DataFrame({
                "pos": values.index, "reason_code": "date_order",
                "reason": [reason_text("date_order", label=label, value=v) for v in values],
            }))


def _clean_values(frame: pd.DataFrame, out: dict, settings: Settings) -> None:
    index = frame.index

    def column(name: str) -> pd.Series:
        return text_column(frame.get(name), index)

    for name in ("repeat_of", "backlog_leader", "handling_unit", "address", "petitioner_name",
                 "petitioner_phone", "description", "problem_place"):
        out[name] = column(name)
    for name in ("village_code", "street_code", "district_code", "grid_code",
                 "problem_place_code"):
        out[name] = column(name).str.replace(r"\.0$", "", regex=True)
    for name in cols.BOOLEAN_COLUMNS:
        values = frame.get(name)
        out[name] = (cols.parse_boolean(values) if values is not None
                     else pd.Series(False, index=index))
    out["category"] = _normalised(frame, "category", cols.normalise_category)
    out["purpose"] = _normalised(frame, "purpose", cols.normalise_purpose)
    out["channel"] = _normalised(frame, "channel", cols.normalise_channel)
    out["rating"] = _normalised(frame, "rating", cols.normalise_rating)
    out["registered_level"] = _normalised(frame, "registered_level",
                                          cols.normalise_registered_level)
    out["status"] = _normalised(frame, "status", cols.normalise_status)
    out["rating_state"] = _normalised(frame, "rating_state", cols.normalise_rating_state)
    out["people_count"], out["_bad_people_count"] = _people_count(frame.get("people_count"), index)
    given_hash = column("petitioner_id_hash")
    if "petitioner_id" in frame.columns:
        hashed = hash_id_numbers(frame["petitioner_id"], salt=settings.id_hash_salt)
        given_hash = hashed.where(hashed.notna(), given_hash)
    out["petitioner_id_hash"] = given_hash


def _people_count(values: pd.Series | None, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """涉及人数 as a nullable integer; a value given but not a count in 1…100,000 is bad."""
    if values is None:
        return pd.Series(pd.NA, index=index, dtype="Int64"), pd.Series(False, index=index)
    numbers = pd.to_numeric(values, errors="coerce")
    given = _had_value(values, index)
    valid = numbers.notna() & (numbers % 1 == 0) & (numbers >= 1) & (numbers <= 100_000)
    counts = numbers.where(valid).astype("Float64").astype("Int64")
    return counts, given & ~valid


def _normalised(frame: pd.DataFrame, name: str, normalise) -> pd.Series:  # noqa: ANN001
    values = frame.get(name)
    if values is None:
        return pd.Series(None, index=frame.index, dtype="str")
    return normalise(values)


def clean_coordinates(
    frame: pd.DataFrame, *, crs: str, extent: Extent | None, settings: Settings
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, int]:
    """Read lon/lat, fix swapped pairs, convert to WGS-84, drop unusable points.

    Returns
    -------
    lon, lat : ndarray
        WGS-84, NaN where missing or dropped.
    problems : DataFrame
        pos, reason_code, reason of the dropped points (bad_coordinates, out_of_extent).
    swapped : int
        Pairs swapped back.
    """
    index = frame.index
    raw_lon, raw_lat = frame.get("lon"), frame.get("lat")
    lon = _numbers(raw_lon, index)
    lat = _numbers(raw_lat, index)
    given_lon = _had_value(raw_lon, index).to_numpy()
    given_lat = _had_value(raw_lat, index).to_numpy()
    finite = np.isfinite(lon) & np.isfinite(lat)
    not_numbers = (given_lon | given_lat) & ~finite
    swapped = np.zeros(len(index), dtype=bool)
    if extent is not None and finite.any():
        box = _source_extent(extent, crs)
        swapped = finite & ~box.contains(lon, lat) & box.contains(lat, lon)
        lon[swapped], lat[swapped] = lat[swapped].copy(), lon[swapped].copy()
    wlon, wlat = to_wgs84(lon, lat, crs)
    wlon, wlat = np.asarray(wlon, dtype=float), np.asarray(wlat, dtype=float)
    outside = np.zeros(len(index), dtype=bool)
    if extent is not None:
        outside = finite & ~extent.contains(wlon, wlat, margin_m=settings.nearest_max_m)
    problems = [
        _coord_reject(index[not_numbers], "bad_coordinates", raw_lon, raw_lat),
        _coord_reject(index[outside], "out_of_extent", raw_lon, raw_lat),
    ]
    dropped = not_numbers | outside
    wlon[dropped], wlat[dropped] = np.nan, np.nan
    return wlon, wlat, pd.concat(problems, ignore_index=True), int(swapped.sum())


def _source_extent(extent: Extent, crs: str) -> Extent:
    """The grid box expressed (roughly) in the file's system, grown by a margin."""
    xs, ys = from_wgs84(np.array([extent.minx, extent.maxx]),
                        np.array([extent.miny, extent.maxy]), crs)
    m = _SWAP_MARGIN_DEG
    return Extent(float(min(xs)) - m, float(min(ys)) - m, float(max(xs)) + m, float(max(ys)) + m)


def _numbers(values: pd.Series | None, index: pd.Index) -> np.ndarray:
    if values is None:
        return np.full(len(index), np.nan)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float).to_numpy(copy=True)
    return pd.to_numeric(values.astype("str").str.strip(), errors="coerce").astype(float).to_numpy(
        copy=True)


def _had_value(values: pd.Series | None, index: pd.Index) -> pd.Series:
    if values is None:
        return pd.Series(False, index=index)
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return values.notna()
    return values.notna() & (values.astype("str").str.strip() != "")


def _coord_reject(
    positions: pd.Index, code: str, raw_lon: pd.Series | None, raw_lat: pd.Series | None
) -> pd.DataFrame:
    def show(series: pd.Series | None, pos: object) -> str:
        return "" if series is None or pd.isna(series[pos]) else str(series[pos])

    return pd.DataFrame({
        "pos": positions, "reason_code": code,
        "reason": [reason_text(code, value=f"经度={show(raw_lon, p)}, 纬度={show(raw_lat, p)}")
                   for p in positions],
    })


def _derive(out: dict, settings: Settings, index: pd.Index) -> None:
    """Derive status, due_at and rating_state where the source did not give them."""
    derived = pd.Series("registered", index=index, dtype="str")
    derived = derived.mask(out["accepted_at"].notna(), "accepted")
    derived = derived.mask(out["replied_at"].notna(), "replied")
    derived = derived.mask(out["closed_at"].notna(), "closed")
    out["status"] = out["status"].where(out["status"].notna(), derived)
    days = np.where(out["extended"].to_numpy(bool),
                    settings.default_deadline_days + settings.extension_days,
                    settings.default_deadline_days)
    computed = out["accepted_at"] + pd.to_timedelta(days, unit="D")
    out["due_at"] = out["due_at"].where(out["due_at"].notna(), computed)
    as_of = _data_as_of(out)
    rated = out["rating"].notna()
    window = pd.Timedelta(days=settings.rating_window_days)
    expired = ~rated & out["replied_at"].notna() & (out["replied_at"] + window < as_of)
    state = pd.Series("待评价", index=index, dtype="str")
    state = state.mask(expired, "超期未评价").mask(rated, "已评价")
    out["rating_state"] = out["rating_state"].where(out["rating_state"].notna(), state)


def _data_as_of(out: dict) -> pd.Timestamp:
    """The file's "as of": its latest timestamp (an export is as fresh as its newest entry)."""
    latest = [out[c].max() for c in cols.TIMESTAMP_COLUMNS if c != "due_at" and c in out]
    latest = [t for t in latest if pd.notna(t)]
    return max(latest) if latest else pd.Timestamp.now()


def _duplicates(case_ids: pd.Series) -> pd.DataFrame:
    dup = case_ids.duplicated(keep="last")
    return reject_positions(case_ids.index[dup.to_numpy()], "duplicate_in_file")


def reject_positions(positions: pd.Index, code: str) -> pd.DataFrame:
    """Rejects (pos, reason_code, reason) of some positions for one fixed reason."""
    return pd.DataFrame({"pos": np.asarray(positions, dtype=np.int64), "reason_code": code,
                         "reason": reason_text(code)})


def _naive_local(values: pd.Series) -> pd.Series:
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return values.astype("datetime64[us]")


def _excel_serial(days: pd.Series) -> pd.Series:
    ok = days.between(20_000, 80_000)  # 1954 … 2119
    stamps = _EXCEL_EPOCH + (days.where(ok) * 86_400_000_000).round().astype("Int64").to_numpy(
        dtype="timedelta64[us]", na_value=np.timedelta64("NaT"))
    return pd.Series(stamps, index=days.index).astype("datetime64[us]").where(ok)


def _parse_slow(text: pd.Series) -> pd.Series:
    """The rarer spellings: Chinese dates, slashes, offsets, compact digits, Excel serials."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    norm = (text.str.replace("年", "-", regex=False).str.replace("月", "-", regex=False)
            .str.replace("日", " ", regex=False).str.replace("/", "-", regex=False)
            .str.replace("T", " ", regex=False).str.replace(r"\s+", " ", regex=True).str.strip())
    has_zone = norm.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if has_zone.any():
        zoned = pd.to_datetime(norm[has_zone].str.replace(" ", "T", n=1, regex=False),
                               format="ISO8601", utc=True, errors="coerce")
        result[zoned.index] = _naive_local(zoned)
    todo = ~has_zone
    for fmt in _FAST_FORMATS + _SLOW_FORMATS:
        if not todo.any():
            break
        got = pd.to_datetime(norm[todo], format=fmt, errors="coerce")
        result[got.index] = result[got.index].where(result[got.index].notna(),
                                                     got.astype("datetime64[us]"))
        todo &= result.isna()
    if todo.any():
        serial = pd.to_numeric(norm[todo], errors="coerce")
        result[serial.index] = _excel_serial(serial)
    return result
