"""Turn raw case values into typed, validated, derived columns, column by column.

Everything here is vectorised over the whole file (pandas/numpy): a 1,000,000-row
export is cleaned in a few seconds. Each rule that can refuse a row returns a
reason code and a message in Chinese a clerk can act on (:data:`REASONS`).

Decisions (documented in docs/columns.md):

* A row without 信访件编号 or 登记时间, or with a timestamp that cannot be read, is
  rejected; so is a row with a timestamp later than the moment of loading (plus
  ``future_tolerance_min``: one mistyped year must not move the data date past today) and
  a row whose lifecycle is out of order (:data:`LIFECYCLE_ORDER`: 受理 before 登记,
  办结 before 受理 …). The data date ("as of") is never later than the load time.
* A stored text value longer than its column allows (信访件编号 64 characters, free text
  ``max_text_chars``) or holding a NUL character rejects its row, on either backend.
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
from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from etl import columns as cols
from etl.reasons import reason_text
from geo.crs import from_wgs84, to_wgs84
from geo.errors import CRSError
from geo.schema import cases as cases_table
from geo.settings import Settings
from geo.vocab import CRS_SYSTEMS

TIMESTAMP_LABELS: dict[str, str] = {
    "registered_at": "登记时间", "transferred_at": "转送/交办时间", "accepted_at": "受理时间",
    "due_at": "办理期限", "replied_at": "答复时间", "closed_at": "办结时间",
    "followed_up_at": "回访时间", "rated_at": "评价时间", "extended_at": "延期时间",
    "reviewed_at": "复查时间", "rechecked_at": "复核时间", "backlog_at": "列为积案时间",
}

LIFECYCLE_ORDER: tuple[tuple[str, str], ...] = (
    ("transferred_at", "registered_at"), ("accepted_at", "registered_at"),
    ("replied_at", "registered_at"), ("closed_at", "registered_at"),
    ("backlog_at", "registered_at"), ("replied_at", "accepted_at"),
    ("closed_at", "accepted_at"), ("extended_at", "accepted_at"),
    ("rated_at", "replied_at"), ("followed_up_at", "replied_at"),
    ("reviewed_at", "replied_at"), ("rechecked_at", "reviewed_at"),
)
"""(later, earlier): a case whose ``later`` step lies more than a minute before its
``earlier`` one is rejected with both names (受理 before 登记, 办结 before 受理, 评价 before
答复, 复核 before 复查 …): an out-of-order lifecycle is a broken export, not a fact."""

CASE_TEXT_LABELS: dict[str, str] = {
    "case_id": "信访件编号", "repeat_of": "重复件原件编号", "backlog_leader": "包案领导",
    "handling_unit": "承办单位", "address": "地址", "petitioner_name": "信访人",
    "petitioner_phone": "联系电话", "petitioner_id_hash": "身份证号摘要",
    "description": "信访内容",
}
"""Stored free-text columns a source fills as-is, with the name a clerk knows them by."""

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
    excluded: np.ndarray | None = None,
    now: datetime | None = None,
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
    excluded
        True for rows the reader already refused (a broken line): they take no part in
        the duplicate rule, so they never displace a good row.
    now
        The moment of loading: later timestamps (beyond ``settings.future_tolerance_min``)
        are rejected, and the data date is never later. Default: the current time.

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
        now = (now or datetime.now()).replace(microsecond=0)
        _clean_timestamps(frame, out, rejects, now=pd.Timestamp(now),
                          tolerance=pd.Timedelta(minutes=settings.future_tolerance_min))
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
    rejects.append(limit_rejects(out, case_text_limits(settings), frame.index))
    _derive(out, settings, frame.index, now=pd.Timestamp(now))
    out = pd.DataFrame(out, index=frame.index)
    rejected = pd.concat(rejects, ignore_index=True).drop_duplicates("pos", keep="first")
    keep = ~out.index.isin(rejected["pos"])
    if excluded is not None:
        keep &= ~np.asarray(excluded, dtype=bool)
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
    # the common spelling on the whole column at once (Arrow); the other formats on what is left
    parsed = pd.Series(_common_spelling(text), index=text.index)
    todo = present & parsed.isna()
    if todo.any():  # the first format as pandas reads it (2024-2-1 8:30:00, …)
        got = pd.to_datetime(text[todo], format=_FAST_FORMATS[0], errors="coerce")
        parsed.loc[todo] = got.astype("datetime64[us]")
        todo &= parsed.isna()
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


def _common_spelling(text: pd.Series) -> np.ndarray:
    """Parse the values written exactly ``YYYY-MM-DD HH:MM:SS`` in Arrow; NaT for the rest.

    A value counts only when Arrow's own text of the parsed time is the value again, so
    what Arrow's strptime would roll over instead of refusing (2024-02-30 → 03-01, second
    60) or read loosely (a one-digit month) is left to pandas, which reads it as before.
    The values that count are read as pandas reads them. pandas' pass first turns the Arrow
    text into Python strings; on the bench file's twelve timestamp columns this takes 2.7 s
    of CPU instead of 4.2 s (same results, value for value), and without the GIL.
    """
    arrow = pa.chunked_array(_arrow_chunks(text), type=pa.large_string())
    parsed = pc.strptime(arrow, format=_FAST_FORMATS[0], unit="s", error_is_null=True)
    same = pc.fill_null(pc.equal(parsed.cast(pa.large_string()), arrow), False)
    return pc.if_else(same, parsed, pa.scalar(None, parsed.type)).cast(
        pa.timestamp("us")).to_numpy()


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


# -- steps ---------------------------------------------------------------------------------


def check_crs(crs: str) -> None:
    """Raise CRSError unless ``crs`` is one of geo.vocab.CRS_SYSTEMS."""
    if crs not in CRS_SYSTEMS:
        raise CRSError(
            f"坐标系应为 wgs84、gcj02 或 bd09，收到 {crs!r} / --crs must be wgs84, gcj02 or bd09"
        )


def text_column(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """Return stripped text, empty → missing; whole floats lose their '.0' (Excel ids).

    A NUL is kept here so that :func:`limit_rejects` rejects its row (PostgreSQL text cannot
    hold one; the same rule on SQLite).
    """
    if values is None:
        return pd.Series(None, index=index, dtype="str")
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & (values % 1 == 0)
        text = values.astype("str").where(~whole, values.fillna(0).astype("int64").astype("str"))
        return text.where(values.notna())
    text = values.astype("str").str.strip()
    return text.where(values.notna() & (text != ""))


def _clean_timestamps(frame: pd.DataFrame, out: dict, rejects: list, *, now: pd.Timestamp,
                      tolerance: pd.Timedelta) -> None:
    latest = now + tolerance
    for column in cols.TIMESTAMP_COLUMNS:
        parsed, bad = parse_timestamps(frame.get(column), frame.index)
        label = TIMESTAMP_LABELS[column]
        if bad.any():
            raw = frame[column][bad].astype("str")
            rejects.append(pd.DataFrame({
                "pos": raw.index, "reason_code": "bad_date",
                "reason": [reason_text("bad_date", label=label, value=v) for v in raw],
            }))
        future = parsed > latest
        if column != "due_at" and future.any():  # a due date is a promise: it may lie ahead
            values = parsed[future].dt.strftime("%Y-%m-%d %H:%M")
            shown = now.strftime("%Y-%m-%d %H:%M")
            rejects.append(pd.DataFrame({
                "pos": values.index, "reason_code": "future_date",
                "reason": [reason_text("future_date", label=label, value=v, now=shown)
                           for v in values],
            }))
        out[column] = parsed
    missing = out["registered_at"].isna() & ~_had_value(frame.get("registered_at"), frame.index)
    rejects.append(reject_positions(frame.index[missing], "missing_registered_at"))
    slack = np.timedelta64(60, "s")
    for later, earlier in LIFECYCLE_ORDER:  # on the numpy values: NaT compares False
        early = out[later].to_numpy() < out[earlier].to_numpy() - slack
        if early.any():
            early = pd.Series(early, index=frame.index)
            values = out[later][early].dt.strftime("%Y-%m-%d %H:%M")
            rejects.append(pd.DataFrame({
                "pos": values.index, "reason_code": "date_order",
                "reason": [reason_text("date_order", label=TIMESTAMP_LABELS[later],
                                       before=TIMESTAMP_LABELS[earlier], value=v)
                           for v in values],
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


class CoordinateCheck(NamedTuple):
    """What the coordinate rules found: WGS-84 points and which rows they dropped, and why."""

    lon: np.ndarray
    """WGS-84, NaN where missing or dropped."""
    lat: np.ndarray
    dropped: dict[str, np.ndarray]
    """Reason code (bad_coordinates, out_of_extent) → boolean mask of the rows it dropped."""
    swapped: int
    """Pairs swapped back."""


def check_coordinates(
    raw_lon: pd.Series | None, raw_lat: pd.Series | None, index: pd.Index, *, crs: str,
    extent: Extent | None, settings: Settings
) -> CoordinateCheck:
    """Read lon/lat, fix swapped pairs, convert to WGS-84, drop unusable points (the rule).

    Without frames, so that a live case (one row, :mod:`etl.intake`) pays for arrays only;
    :func:`clean_coordinates` is the same rule with the reject frame an ingest writes.
    """
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
    wlon[not_numbers | outside], wlat[not_numbers | outside] = np.nan, np.nan
    return CoordinateCheck(wlon, wlat, {"bad_coordinates": not_numbers, "out_of_extent": outside},
                           int(swapped.sum()))


def coordinate_problems(check: CoordinateCheck, index: pd.Index, raw_lon: pd.Series | None,
                        raw_lat: pd.Series | None) -> pd.DataFrame:
    """The dropped rows of a check as reject rows: pos, reason_code, reason (values as given)."""
    # frames only for what was dropped: a clean one-row frame (a live case) builds one, not three
    problems = [_coord_reject(index[mask], code, raw_lon, raw_lat)
                for code, mask in check.dropped.items() if mask.any()]
    if not problems:
        return _coord_reject(index[:0], "bad_coordinates", raw_lon, raw_lat)
    return pd.concat(problems, ignore_index=True) if len(problems) > 1 else problems[0]


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
    raw_lon, raw_lat = frame.get("lon"), frame.get("lat")
    check = check_coordinates(raw_lon, raw_lat, frame.index, crs=crs, extent=extent,
                              settings=settings)
    return (check.lon, check.lat, coordinate_problems(check, frame.index, raw_lon, raw_lat),
            check.swapped)


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
        "pos": positions, "reason_code": [code] * len(positions),  # (no scalar broadcast)
        "reason": [reason_text(code, value=f"经度={show(raw_lon, p)}, 纬度={show(raw_lat, p)}")
                   for p in positions],
    })


def _derive(out: dict, settings: Settings, index: pd.Index, *, now: pd.Timestamp) -> None:
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
    computed = computed.where(out["status"] != "not_accepted")  # 不予受理: no handling deadline
    out["due_at"] = out["due_at"].where(out["due_at"].notna(), computed)
    as_of = min(_data_as_of(out, now), now)  # the data date is never later than now
    rated = out["rating"].notna()
    window = pd.Timedelta(days=settings.rating_window_days)
    expired = ~rated & out["replied_at"].notna() & (out["replied_at"] + window < as_of)
    state = pd.Series("待评价", index=index, dtype="str")
    state = state.mask(expired, "超期未评价").mask(rated, "已评价")
    out["rating_state"] = out["rating_state"].where(out["rating_state"].notna(), state)


def _arrow_chunks(values: pd.Series) -> list[pa.Array]:
    """The values as Arrow large_string chunks (zero-copy for Arrow-backed text)."""
    array = values.array
    if hasattr(array, "__arrow_array__"):
        arrow = array.__arrow_array__()
        chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    else:
        chunks = [pa.array(values.astype("str").array, type=pa.large_string())]
    return [c.cast(pa.large_string()) if c.type != pa.large_string() else c for c in chunks]


def _byte_facts(arrow: pa.ChunkedArray) -> tuple[int, bool]:
    """The widest value in bytes and whether any byte is NUL, read off the Arrow buffers."""
    widest, nul = 0, False
    for chunk in arrow.chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
            chunk.offset:chunk.offset + len(chunk) + 1]
        widest = max(widest, int(np.diff(offsets).max()))
        data = chunk.buffers()[2]
        if data is not None and offsets[-1] > offsets[0]:
            raw = np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1] - offsets[0]),
                                offset=int(offsets[0]))
            nul = nul or int(raw.min()) == 0
    return widest, nul


def _data_as_of(out: dict, now: pd.Timestamp) -> pd.Timestamp:
    """The file's "as of": its latest timestamp (an export is as fresh as its newest entry)."""
    latest = [out[c].max() for c in cols.TIMESTAMP_COLUMNS if c != "due_at" and c in out]
    latest = [t for t in latest if pd.notna(t)]
    return max(latest) if latest else now


def case_text_limits(settings: Settings) -> dict[str, tuple[str, int]]:
    """Stored case text column → (label, longest value): the schema's width, else the setting."""
    return text_limits(cases_table, CASE_TEXT_LABELS, settings)


def text_limits(table: sa.Table, labels: dict[str, str],
                settings: Settings) -> dict[str, tuple[str, int]]:
    """Column → (label, limit) for the given columns of a table: String(n) → n, Text → setting."""
    limits = {}
    for name, label in labels.items():
        length = getattr(table.c[name].type, "length", None)
        limits[name] = (label, int(length or settings.max_text_chars))
    return limits


def limit_rejects(out: dict | pd.DataFrame, limits: dict[str, tuple[str, int]],
                  index: pd.Index) -> pd.DataFrame:
    """Reject values longer than their column allows, or holding a NUL character.

    The same limits on SQLite (which would store anything) and PostgreSQL (which refuses
    a NUL and an over-wide value with a driver error), checked before anything is written.
    """
    parts = [pd.DataFrame(columns=["pos", "reason_code", "reason"])]
    for name, (label, limit) in limits.items():
        if name not in out:
            continue
        values = out[name]
        values = values if isinstance(values, pd.Series) else pd.Series(values, index=index)
        arrow = pa.chunked_array(_arrow_chunks(values), type=pa.large_string())
        widest, has_nul = _byte_facts(arrow)
        if widest > limit:  # a character is at least one byte: only then count characters
            lengths = pc.fill_null(pc.utf8_length(arrow), 0).to_numpy()
            long = lengths > limit
            parts.append(pd.DataFrame({
                "pos": index[long], "reason_code": "too_long",
                "reason": [reason_text("too_long", label=label, value=int(n), limit=limit)
                           for n in lengths[long]]}))
        if has_nul:
            nul = pc.fill_null(pc.match_substring(arrow, "\x00"), False).to_numpy()
            parts.append(pd.DataFrame({"pos": index[nul], "reason_code": "nul_character",
                                       "reason": reason_text("nul_character", label=label)}))
    return pd.concat(parts, ignore_index=True)


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
