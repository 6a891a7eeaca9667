"""The dashboard's view tables: pure functions over the store, one per screen.

Every view is computed for one unit scope (a division code): the city leaders' view for the
city or a district, the street office view (街道视图) for one street, the grid worker view
(网格员视图) for one village. Taking the scope as an argument, rather than reading it from
a session, is what lets access rules be enforced per request later: the server decides which
codes a user may pass.

Case semantics follow docs/columns.md: an open case has no ``closed_at`` and is not
``not_accepted``; an open case is overdue when ``due_at`` is before the data's "as of"
time (the newest timestamp in the store, i.e. the export date); it is due soon when its
deadline falls within the next :data:`DUE_SOON_DAYS` days.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import schema
from geo.codes import level_of, prefix_of
from geo.crs import lonlat_to_xy
from geo.errors import CodeError
from geo.privacy import mask_frame
from geo.settings import Settings
from geo.store import read_units
from geo.vocab import CITY_CODE, LEVEL_NAMES_ZH, STATION_TYPE_ZH, STATUS_ZH
from layers.casedata import case_table, filled_due
from layers.casedata import data_as_of as cached_as_of
from layers.filters import Filters
from layers.metrics import attribute_mask, compute_metrics

NO_FILTERS = Filters()
DUE_SOON_DAYS = 7
AGEING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–15天", 0, 15),
    ("16–60天", 16, 60),
    ("61–90天", 61, 90),
    (">90天", 91, None),
)
"""Ageing buckets (积压时长) of open cases: label, first day, last day (None = no limit)."""


EXPORT_COLUMNS_ZH: dict[str, str] = {
    "case_id": "信访件编号",
    "registered_at": "登记时间",
    "accepted_at": "受理时间",
    "due_at": "办理期限",
    "replied_at": "答复时间",
    "closed_at": "办结时间",
    "status_zh": "状态",
    "category": "内容分类",
    "purpose": "信访目的",
    "channel": "信访渠道",
    "is_repeat": "重复信访",
    "is_backlog": "积案",
    "backlog_leader": "包案领导",
    "registered_level": "登记机构级别",
    "handling_unit": "承办单位",
    "rating": "评价",
    "rating_state": "评价状态",
    "district_code": "区代码",
    "street_code": "镇街代码",
    "village_code": "村居代码",
    "attach_method": "落格方式",
    "lon": "经度",
    "lat": "纬度",
    "address": "地址",
    "petitioner_name": "信访人",
    "petitioner_phone": "联系电话",
}
"""Columns of the case export, in order, with their Chinese headers."""

_CASE_COLUMNS = (
    "case_id", "registered_at", "accepted_at", "due_at", "extended", "replied_at", "closed_at",
    "followed_up_at", "rating", "rating_state", "status", "category", "purpose", "channel",
    "is_repeat", "repeat_of", "is_backlog", "backlog_leader", "registered_level", "handling_unit",
    "lon", "lat", "address", "village_code", "street_code", "district_code", "grid_code",
    "attach_method", "petitioner_name", "petitioner_phone",
)
_SCOPE_COLUMN = {
    "district": "district_code",
    "street": "street_code",
    "village": "village_code",
    "grid": "grid_code",
}


@dataclass(frozen=True)
class DataInfo:
    """What the data is: its date range, its "as of" time, its size, and whether it is synthetic."""

    date_from: date | None
    date_to: date | None
    as_of: datetime | None
    cases: int
    synthetic: bool


@dataclass(frozen=True)
class Unit:
    """One grid unit as the dashboard names it."""

    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass
class CityView:
    """City leaders' view (领导视图) of a scope: KPIs, the ranking of its children, the city."""

    unit: Unit
    kpis: dict
    ranking: pd.DataFrame
    city: dict
    unassigned_cases: int
    child_level: str | None


@dataclass
class StreetView:
    """Street office view (街道视图) of one street."""

    unit: Unit
    as_of: datetime
    open_by_village: pd.DataFrame
    ageing: pd.DataFrame
    overdue: pd.DataFrame
    due_soon: pd.DataFrame
    repeats: pd.DataFrame
    backlog: pd.DataFrame
    villages_without_station: pd.DataFrame
    total_cases: int


@dataclass
class VillageView:
    """Grid worker view (网格员视图) of one village."""

    unit: Unit
    as_of: datetime
    open_cases: pd.DataFrame
    followups_pending: pd.DataFrame
    ratings_pending: pd.DataFrame
    nearest_stations: pd.DataFrame
    case_points: pd.DataFrame
    total_cases: int


# --------------------------------------------------------------------------- public functions


def data_info(engine: Engine) -> DataInfo:
    """Describe the store's cases: date range (登记), "as of" time, count, synthetic flag.

    Returns
    -------
    DataInfo
        All None/0 when the store holds no cases.
    """
    c = schema.cases.c
    query = sa.select(
        sa.func.min(c.registered_at), sa.func.max(c.registered_at), sa.func.count(),
        sa.func.max(sa.case((c.synthetic.is_(True), 1), else_=0)),
    )
    with engine.connect() as conn:
        first, last, n, synthetic = conn.execute(query).one()
    return DataInfo(
        date_from=_as_date(first), date_to=_as_date(last), as_of=data_as_of(engine),
        cases=int(n or 0), synthetic=bool(synthetic),
    )


def data_as_of(engine: Engine) -> datetime | None:
    """Return the data's "as of" time: the newest timestamp of any kind in the cases table.

    Delegates to :func:`layers.casedata.data_as_of` (cached with the in-memory case table), so
    every view and every metric judge "overdue" at the same moment.
    """
    value = cached_as_of(engine)
    return None if value is None else _as_datetime(value)


def unit_metrics(
    engine: Engine,
    *,
    level: str,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    parent_code: str | None = None,
    as_of: datetime | None = None,
    with_coverage: bool = False,
) -> pd.DataFrame:
    """Return :func:`layers.metrics.compute_metrics`, memoised per store state.

    One page view asks for the same table several times at once (the map, the ranking, the
    KPIs); the memo, keyed by the store's change stamp and every argument, computes it once and
    makes concurrent callers wait for that one computation. Results stay exact: any change to
    the cases or the grid changes the stamp. Callers must not modify the returned frame.
    """
    stamp = case_table(engine, settings=settings).stamp
    key = (engine.url.render_as_string(hide_password=False), stamp, level, parent_code,
           filters, settings, as_of, with_coverage)
    with _MEMO_LOCK:
        lock = _MEMO_KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _MEMO_LOCK:
            hit = _MEMO.get(key)
        if hit is not None:
            return hit
        value = compute_metrics(engine, level=level, filters=filters, settings=settings,
                                parent_code=parent_code, as_of=as_of,
                                with_coverage=with_coverage)
        with _MEMO_LOCK:
            _MEMO[key] = value
            while len(_MEMO) > _MEMO_SIZE:
                old, _ = _MEMO.popitem(last=False)
                _MEMO_KEY_LOCKS.pop(old, None)
    return value


def clear_metrics_memo() -> None:
    """Forget every memoised metrics table (benchmarks measure each query from scratch)."""
    with _MEMO_LOCK:
        _MEMO.clear()
        _MEMO_KEY_LOCKS.clear()


_MEMO: OrderedDict = OrderedDict()
_MEMO_KEY_LOCKS: dict = {}
_MEMO_LOCK = threading.Lock()
_MEMO_SIZE = 32


def filter_options(engine: Engine) -> dict[str, list[str]]:
    """Return the distinct category, purpose and channel values present in the store, sorted."""
    c = schema.cases.c
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in ("category", "purpose", "channel"):
            values = conn.execute(sa.select(c[name]).where(c[name].is_not(None)).distinct())
            out[name] = sorted(v for (v,) in values)
    return out


def children_of(engine: Engine, code: str, *, level: str) -> pd.DataFrame:
    """Return the current units of ``level`` inside unit ``code`` (code, name, parent_code)."""
    units = read_units(engine, level=level, with_geometry=False)
    if level_of(code) != "city":
        units = units[units["code"].str.startswith(prefix_of(code))]
    return units[["code", "name", "parent_code"]].reset_index(drop=True)


def unit_of(engine: Engine, code: str) -> Unit:
    """Return the current unit with this code.

    Raises
    ------
    CodeError
        The code is malformed or no current unit has it.
    """
    level_of(code)
    t = schema.grid_unit.c
    query = sa.select(t.code, t.name, t.level, t.parent_code).where(
        t.code == code, t.is_current.is_(True))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise CodeError(f"没有代码为 {code} 的网格单元 / no current unit has code {code}")
    return Unit(code=row.code, name=row.name, level=row.level,
                parent_code=_clean_code(row.parent_code))


def unit_path(engine: Engine, code: str) -> list[Unit]:
    """Return the chain of units from the city down to ``code`` (for the breadcrumb)."""
    path = [unit_of(engine, code)]
    while path[0].parent_code:
        path.insert(0, unit_of(engine, path[0].parent_code))
    return path


def child_level(level: str) -> str | None:
    """Return the level below ``level`` shown on the map (None below village)."""
    order = ("city", "district", "street", "village")
    return order[order.index(level) + 1] if level in order[:-1] else None


def scoped_cases(
    engine: Engine,
    code: str,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Return the cases attributed to unit ``code`` that pass ``filters``.

    The city scope holds every case, including unassigned ones (未落格). Derived columns:
    ``is_open``, ``is_overdue``, ``days_open`` (days since 登记 as of ``as_of``),
    ``days_left`` (days to the deadline; negative when overdue), ``status_zh``. A missing
    ``due_at`` is filled as 受理 + ``default_deadline_days`` (+ ``extension_days`` when
    extended), as the layers do. Personal fields are returned unmasked: callers mask before
    anything leaves the server.
    """
    settings = settings or Settings()
    as_of = as_of or data_as_of(engine) or datetime.now()
    frame = _read_cases(engine, code, filters=filters)
    frame = _fill_due(frame, settings)
    frame = _derive_case_columns(frame, as_of=as_of)
    return _apply_status_filter(frame, filters.status)


def city_view(
    engine: Engine,
    code: str = CITY_CODE,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    as_of: datetime | None = None,
) -> CityView:
    """Compute the city leaders' view of ``code``: its KPIs and the ranking of its children.

    Units with fewer cases than ``settings.min_cases_for_rate`` keep their counts but get no
    rank (``rank`` is NA), as the layers' ``*_rankable`` flags say.

    Returns
    -------
    CityView
        ``ranking`` has one row per child unit, the metric columns of
        :func:`layers.metrics.compute_metrics` and ``rank`` (by on-time completion, then
        satisfaction, best first).
    """
    unit = unit_of(engine, code)
    below = child_level(unit.level)
    level = below or unit.level
    parent = code if below else unit.parent_code
    metrics = unit_metrics(engine, level=level, filters=filters, settings=settings,
                           parent_code=parent if unit.level != "city" else None, as_of=as_of)
    units = metrics[metrics["row_type"] == "unit"].copy()
    if level != "district" and parent:
        units = units[units["parent_code"] == parent]
    city_row = metrics[metrics["row_type"] == "city"]
    unassigned = metrics[metrics["row_type"] == "unassigned"]
    kpis = _kpis_of(engine, unit, metrics, filters=filters, settings=settings, as_of=as_of)
    return CityView(
        unit=unit,
        kpis=kpis,
        ranking=_rank_units(units),
        city=city_row.iloc[0].to_dict() if len(city_row) else {},
        unassigned_cases=int(unassigned["cases"].sum()) if len(unassigned) else 0,
        child_level=below,
    )


def peer_comparison(
    engine: Engine,
    code: str,
    *,
    metric: str,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Compare unit ``code`` on one metric with its peers (same parent) and the city.

    Returns
    -------
    DataFrame
        Columns code, name, value, num, den, role ('unit'|'peer'|'city'), sorted by value
        (best first when higher is better); the city row last.
    """
    unit = unit_of(engine, code)
    if unit.level == "city":
        return pd.DataFrame(columns=["code", "name", "value", "num", "den", "role"])
    parent = unit.parent_code if unit.level != "district" else None
    metrics = unit_metrics(engine, level=unit.level, filters=filters, settings=settings,
                           parent_code=parent, as_of=as_of)
    rows = metrics[(metrics["row_type"] == "unit")]
    if parent:
        rows = rows[rows["parent_code"] == parent]
    rows = pd.concat([rows, metrics[metrics["row_type"] == "city"]])
    out = pd.DataFrame({
        "code": rows["code"], "name": rows["name"], "value": rows[metric],
        "num": rows[metric + "_num"] if metric + "_num" in rows else np.nan,
        "den": rows[metric + "_den"] if metric + "_den" in rows else np.nan,
        "role": np.where(rows["row_type"] == "city", "city",
                         np.where(rows["code"] == code, "unit", "peer")),
    })
    city = out[out["role"] == "city"]
    body = out[out["role"] != "city"].sort_values("value", ascending=False, na_position="last")
    return pd.concat([body, city], ignore_index=True)


def monthly_trend(
    engine: Engine,
    code: str,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    months: int = 12,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Return monthly figures of unit ``code`` for the last ``months`` months of data.

    One row per calendar month of registration (登记月份): cases, open_cases, closed,
    on_time (closed by the deadline), and three rates computed from their own numerators
    and denominators — on_time_completion (按期办结率, 初件 closed on time / 初件 whose
    deadline falls in the month, up to the data date, as in layers.metrics), satisfaction
    (满意率, 满意+基本满意 / rated), repeat (重复信访率, repeats / cases). The figures other
    than on-time completion use the month of 登记.
    """
    as_of = as_of or data_as_of(engine) or datetime.now()
    window = _last_months(as_of, months)
    frame = _trend_cases(engine, code, filters=filters, settings=settings)
    frame = _open_columns(frame, as_of=as_of)
    frame = _apply_status_filter(_within_dates(frame, filters), filters.status)
    return _monthly_table(frame, window=window, as_of=as_of)


def ageing_buckets(cases: pd.DataFrame) -> pd.DataFrame:
    """Count open cases by days since registration: 0–15, 16–60, 61–90, over 90 days.

    Parameters
    ----------
    cases
        A frame from :func:`scoped_cases` (needs ``is_open`` and ``days_open``).

    Returns
    -------
    DataFrame
        Columns bucket (Chinese label), cases; always the four buckets in order.
    """
    open_days = cases.loc[cases["is_open"], "days_open"].to_numpy()
    counts = []
    for label, low, high in AGEING_BUCKETS:
        inside = open_days >= low
        if high is not None:
            inside &= open_days <= high
        counts.append({"bucket": label, "cases": int(inside.sum())})
    return pd.DataFrame(counts)


def street_view(
    engine: Engine,
    street_code: str,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    as_of: datetime | None = None,
) -> StreetView:
    """Compute the street office view of one street (镇街).

    Raises
    ------
    CodeError
        ``street_code`` is not a current street.
    """
    unit = _require_level(engine, street_code, "street")
    as_of = as_of or data_as_of(engine) or datetime.now()
    cases = scoped_cases(engine, street_code, filters=filters, settings=settings, as_of=as_of)
    villages = read_units(engine, level="village", with_geometry=False)
    villages = villages[villages["parent_code"] == street_code][["code", "name"]]
    names = dict(zip(villages["code"], villages["name"], strict=True))
    cases = cases.assign(village_name=cases["village_code"].map(names).fillna("（未落到村居）"))
    open_cases = cases[cases["is_open"]]
    return StreetView(
        unit=unit,
        as_of=as_of,
        open_by_village=_open_by_village(open_cases, villages),
        ageing=ageing_buckets(cases),
        overdue=_case_list(open_cases[open_cases["is_overdue"]], sort="due_at"),
        due_soon=_case_list(open_cases[_due_soon(open_cases)], sort="due_at"),
        repeats=_case_list(cases[cases["is_repeat"]], sort="-registered_at"),
        backlog=_case_list(cases[cases["is_backlog"]], sort="due_at"),
        villages_without_station=_villages_without_station(engine, villages),
        total_cases=len(cases),
    )


def village_view(
    engine: Engine,
    village_code: str,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings,
    as_of: datetime | None = None,
    nearest: int = 5,
) -> VillageView:
    """Compute the grid worker view of one village (村居): what is open and what to do today.

    ``open_cases`` carries ``urgency``: 'overdue' (red), 'soon' (amber, due within 7 days)
    or 'ok'; follow-ups pending (待回访) are replied or closed cases never followed up;
    ratings pending (待评价) are replied cases whose rating window is still open.
    """
    unit = _require_level(engine, village_code, "village")
    as_of = as_of or data_as_of(engine) or datetime.now()
    cases = scoped_cases(engine, village_code, filters=filters, settings=settings, as_of=as_of)
    open_cases = cases[cases["is_open"]].assign(urgency=_urgency(cases[cases["is_open"]]))
    replied = cases["replied_at"].notna() | cases["closed_at"].notna()
    rating_state = _rating_state(cases, as_of=as_of, window_days=settings.rating_window_days)
    return VillageView(
        unit=unit,
        as_of=as_of,
        open_cases=_case_list(open_cases, sort="due_at", extra=("urgency",)),
        followups_pending=_case_list(cases[replied & cases["followed_up_at"].isna()],
                                     sort="replied_at"),
        ratings_pending=_case_list(cases[replied & (rating_state == "待评价")],
                                   sort="replied_at"),
        nearest_stations=nearest_stations(engine, village_code, limit=nearest),
        case_points=open_cases.loc[open_cases["lon"].notna(),
                                   ["case_id", "lon", "lat", "urgency", "category"]]
        .reset_index(drop=True),
        total_cases=len(cases),
    )


def nearest_stations(engine: Engine, code: str, *, limit: int = 5) -> pd.DataFrame:
    """Return the stations nearest to a unit's inner point, distances in metres (EPSG:4547).

    Returns
    -------
    DataFrame
        Columns station_id, name, station_type, type_zh, lon, lat, distance_m; nearest first.
    """
    units = read_units(engine, level=level_of(code))
    units = units[units["code"] == code]
    if units.empty:
        raise CodeError(f"没有代码为 {code} 的网格单元 / no current unit has code {code}")
    point = units.geometry.iloc[0].representative_point()
    s = schema.station.c
    with engine.connect() as conn:
        stations = pd.DataFrame(conn.execute(
            sa.select(s.station_id, s.name, s.station_type, s.lon, s.lat)).mappings().all(),
            columns=["station_id", "name", "station_type", "lon", "lat"])
    if stations.empty:
        return stations.assign(type_zh=pd.Series(dtype=str), distance_m=pd.Series(dtype=float))
    x0, y0 = lonlat_to_xy(point.x, point.y)
    x, y = lonlat_to_xy(stations["lon"].to_numpy(float), stations["lat"].to_numpy(float))
    stations["distance_m"] = np.hypot(x - x0, y - y0).round(0)
    stations["type_zh"] = stations["station_type"].map(STATION_TYPE_ZH)
    return stations.sort_values("distance_m").head(limit).reset_index(drop=True)


def export_table(
    engine: Engine,
    code: str,
    *,
    filters: Filters = NO_FILTERS,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return the filtered case table of a scope for export, personal fields masked.

    Columns are :data:`EXPORT_COLUMNS_ZH` renamed to their Chinese headers; names and phone
    numbers go through :func:`geo.privacy.mask_frame`, the ID hash is never included.
    """
    cases = scoped_cases(engine, code, filters=filters, settings=settings, as_of=as_of)
    cases = cases.sort_values("registered_at", ascending=False)
    if limit is not None:
        cases = cases.head(limit)
    table = mask_frame(cases[list(EXPORT_COLUMNS_ZH)])
    for column in ("is_repeat", "is_backlog"):
        table[column] = np.where(table[column].astype(bool), "是", "否")
    return table.rename(columns=EXPORT_COLUMNS_ZH).reset_index(drop=True)


# --------------------------------------------------------------------------- private helpers


def _require_level(engine: Engine, code: str, level: str) -> Unit:
    unit = unit_of(engine, code)
    if unit.level != level:
        raise CodeError(f"{code} 不是{LEVEL_NAMES_ZH[level]}代码 / {code} is not a {level} code")
    return unit


def _read_cases(engine: Engine, code: str, *, filters: Filters) -> pd.DataFrame:
    c = schema.cases.c
    query = sa.select(*[c[name] for name in _CASE_COLUMNS])
    level = level_of(code)
    if level != "city":
        query = query.where(c[_SCOPE_COLUMN[level]] == code)
    if filters.date_from:
        query = query.where(c.registered_at >= datetime.combine(filters.date_from,
                                                                datetime.min.time()))
    if filters.date_to:
        query = query.where(c.registered_at < datetime.combine(filters.date_to + timedelta(days=1),
                                                               datetime.min.time()))
    for name in ("category", "purpose", "channel"):
        values = getattr(filters, name)
        if values:
            query = query.where(c[name].in_(list(values)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(_CASE_COLUMNS))
    for name in ("registered_at", "accepted_at", "due_at", "replied_at", "closed_at",
                 "followed_up_at"):
        frame[name] = pd.to_datetime(frame[name])
    for name in ("extended", "is_repeat", "is_backlog"):
        frame[name] = frame[name].fillna(False).astype(bool)
    for name in ("lon", "lat"):
        frame[name] = pd.to_numeric(frame[name])
    return frame


def _fill_due(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    deadline = (settings.default_deadline_days, settings.extension_days)
    return frame.assign(due_at=filled_due(frame, deadline))


def _open_columns(frame: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    """Add is_open and is_overdue: the one place views derive them (docs/columns.md)."""
    closed = frame["closed_at"].to_numpy(dtype="datetime64[ns]")
    due = frame["due_at"].to_numpy(dtype="datetime64[ns]")
    is_open = np.isnat(closed) & (frame["status"] != "not_accepted").to_numpy(bool)
    overdue = is_open & ~np.isnat(due) & (due < np.datetime64(pd.Timestamp(as_of), "ns"))
    return frame.assign(is_open=is_open, is_overdue=overdue)


def _derive_case_columns(frame: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    stamp = pd.Timestamp(as_of)
    due = frame["due_at"]
    return _open_columns(frame, as_of=as_of).assign(
        days_open=(stamp - frame["registered_at"]).dt.days,
        days_left=np.floor((due - stamp).dt.total_seconds().to_numpy(float) / 86400),
        status_zh=frame["status"].map(STATUS_ZH).fillna(frame["status"]),
    )


def _apply_status_filter(frame: pd.DataFrame, status: tuple[str, ...]) -> pd.DataFrame:
    if not status:
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    if "open" in status:
        keep |= frame["is_open"].to_numpy()
    if "closed" in status:
        keep |= frame["closed_at"].notna().to_numpy()
    if "overdue" in status:
        keep |= frame["is_overdue"].to_numpy()
    return frame[keep]


def _due_soon(open_cases: pd.DataFrame) -> pd.Series:
    left = open_cases["days_left"]
    return (~open_cases["is_overdue"]) & left.notna() & (left < DUE_SOON_DAYS)


def _urgency(open_cases: pd.DataFrame) -> np.ndarray:
    return np.select(
        [open_cases["is_overdue"].to_numpy(), _due_soon(open_cases).to_numpy()],
        ["overdue", "soon"], default="ok")


def _rating_state(cases: pd.DataFrame, *, as_of: datetime, window_days: int) -> pd.Series:
    """Use the stored rating_state; derive it where missing (docs/columns.md, rating_state)."""
    derived = np.select(
        [cases["rating"].notna(),
         cases["replied_at"].notna()
         & (cases["replied_at"] + pd.Timedelta(days=window_days) < pd.Timestamp(as_of))],
        ["已评价", "超期未评价"], default="待评价")
    return cases["rating_state"].where(cases["rating_state"].notna(),
                                       pd.Series(derived, index=cases.index))


_LIST_COLUMNS = ("case_id", "registered_at", "due_at", "days_open", "days_left", "status_zh",
                 "category", "purpose", "channel", "village_code", "handling_unit",
                 "backlog_leader", "repeat_of", "petitioner_name", "replied_at")


def _case_list(frame: pd.DataFrame, *, sort: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return a masked, sorted case list for display (names masked; phone never listed)."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    columns = [c for c in (*_LIST_COLUMNS, "village_name", *extra) if c in frame]
    out = frame.sort_values(key, ascending=not descending, na_position="last")[columns]
    return mask_frame(out).reset_index(drop=True)


def _open_by_village(open_cases: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    grouped = open_cases.groupby("village_code").agg(
        open_cases=("case_id", "size"), overdue_open=("is_overdue", "sum"))
    out = villages.rename(columns={"code": "village_code"}).merge(
        grouped, left_on="village_code", right_index=True, how="left")
    out[["open_cases", "overdue_open"]] = out[["open_cases", "overdue_open"]].fillna(0).astype(int)
    return out.sort_values(["open_cases", "village_code"], ascending=[False, True]) \
        .reset_index(drop=True)


def _villages_without_station(engine: Engine, villages: pd.DataFrame) -> pd.DataFrame:
    s = schema.station.c
    query = sa.select(s.village_code, s.serves_code).where(s.station_type == "station")
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    served = {code for row in rows for code in row if code}
    missing = villages[~villages["code"].isin(served)]
    return missing.reset_index(drop=True)


def _kpis_of(
    engine: Engine,
    unit: Unit,
    metrics: pd.DataFrame,
    *,
    filters: Filters,
    settings: Settings,
    as_of: datetime | None,
) -> dict:
    """Return the metric row of the scope unit itself (the city row for the city)."""
    if unit.level == "city":
        row = metrics[metrics["row_type"] == "city"]
        return row.iloc[0].to_dict() if len(row) else {}
    parent_row = metrics[(metrics["row_type"] == "parent") & (metrics["code"] == unit.code)]
    if len(parent_row):
        return parent_row.iloc[0].to_dict()
    own = metrics[(metrics["row_type"] == "unit") & (metrics["code"] == unit.code)]
    if len(own):
        return own.iloc[0].to_dict()
    parent = unit.parent_code if unit.level != "district" else None
    same_level = unit_metrics(engine, level=unit.level, filters=filters, settings=settings,
                              parent_code=parent, as_of=as_of)
    own = same_level[(same_level["row_type"] == "unit") & (same_level["code"] == unit.code)]
    return own.iloc[0].to_dict() if len(own) else {}


def _rank_units(units: pd.DataFrame) -> pd.DataFrame:
    """Rank rankable units by on-time completion then satisfaction; others get no rank."""
    out = units.copy()
    key = "on_time_completion"
    rankable = out.get(key + "_rankable", pd.Series(True, index=out.index)).fillna(False) \
        .astype(bool)
    order = out[rankable].sort_values(
        [key, "satisfaction"] if "satisfaction" in out else [key],
        ascending=False, na_position="last").index
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.loc[order, "rank"] = np.arange(1, len(order) + 1)
    return out.sort_values(["rank", "cases"], ascending=[True, False], na_position="last") \
        .reset_index(drop=True)


def _trend_cases(engine: Engine, code: str, *, filters: Filters, settings: Settings
                 ) -> pd.DataFrame:
    """Select a scope's cases from the cached in-memory case table (fast at a million cases)."""
    table = case_table(engine, settings=settings)
    frame = table.frame
    keep = attribute_mask(table, filters)
    if keep is None:
        keep = np.ones(len(frame), dtype=bool)
    level = level_of(code)
    if level != "city":
        index = table.levels[level]
        position = np.flatnonzero(index.units["code"].to_numpy() == code)
        keep = keep & (index.case_unit == (position[0] if len(position) else -2))
    columns = ["registered_at", "due_at", "closed_at", "rating", "status", "is_repeat"]
    return frame[columns] if keep.all() else frame.loc[keep, columns]


def _within_dates(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    if not (filters.date_from or filters.date_to):
        return frame
    keep = pd.Series(True, index=frame.index)
    if filters.date_from:
        keep &= frame["registered_at"] >= pd.Timestamp(filters.date_from)
    if filters.date_to:
        keep &= frame["registered_at"] < pd.Timestamp(filters.date_to) + pd.Timedelta(days=1)
    return frame[keep]


def _last_months(as_of: datetime, months: int) -> pd.PeriodIndex:
    end = pd.Period(pd.Timestamp(as_of), freq="M")
    return pd.period_range(end=end, periods=months, freq="M")


def _monthly_table(frame: pd.DataFrame, *, window: pd.PeriodIndex, as_of: datetime) -> pd.DataFrame:
    """Sum each month's counts with one bincount per figure (fast at a million cases)."""
    first = np.datetime64(window[0].start_time, "M")
    n = len(window)

    def month_index(column: str) -> np.ndarray:
        values = frame[column].to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
        index = (values - first).astype("int64")
        bad = np.isnat(values) | (index < 0) | (index >= n)
        return np.where(bad, n, index)

    def count(index: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = index if mask is None else index[mask]
        return np.bincount(chosen, minlength=n + 1)[:n]

    registered, due, closed = (month_index(c) for c in ("registered_at", "due_at", "closed_at"))
    # 按期办结率 as layers.metrics counts it: 初件 only, not 不予受理, calendar days, and a
    # deadline after the data date belongs to a later period
    closed_day = frame["closed_at"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    due_day = frame["due_at"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    in_cohort = (~frame["is_repeat"].to_numpy(bool)
                 & (frame["status"] != "not_accepted").to_numpy(bool)
                 & (due_day <= np.datetime64(pd.Timestamp(as_of), "D")))
    due = np.where(in_cohort, due, n)
    on_time = ~np.isnat(closed_day) & ~np.isnat(due_day) & (closed_day <= due_day)
    rating = frame["rating"]
    satisfied = rating.isin(["满意", "基本满意"]).to_numpy(bool)
    rated = rating.notna().to_numpy(bool)
    is_open = frame["is_open"].to_numpy(bool)
    repeat = frame["is_repeat"].to_numpy(bool)
    cases, due_total, n_rated = count(registered), count(due), count(registered, rated)
    on_time_num, good, repeats = count(due, on_time), count(registered, satisfied), \
        count(registered, repeat)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "month": [str(m) for m in window],
            "cases": cases,
            "open_cases": count(registered, is_open),
            "closed": count(closed),
            "on_time_num": on_time_num,
            "on_time_den": due_total,
            "on_time_completion": np.where(due_total > 0, on_time_num / due_total, np.nan),
            "satisfaction_num": good,
            "satisfaction_den": n_rated,
            "satisfaction": np.where(n_rated > 0, good / n_rated, np.nan),
            "repeat_num": repeats,
            "repeat": np.where(cases > 0, repeats / cases, np.nan),
        })


def _clean_code(value: object) -> str | None:
    """Return a stored parent code, or None for a missing one (stored NULL, NaN or 'NaN')."""
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def _as_date(value: object) -> date | None:
    if value is None:
        return None
    return pd.Timestamp(value).date()


def _as_datetime(value: object) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


__all__ = [
    "AGEING_BUCKETS", "CITY_CODE", "CityView", "DataInfo", "DUE_SOON_DAYS", "EXPORT_COLUMNS_ZH",
    "STATUS_ZH", "StreetView", "Unit", "VillageView", "ageing_buckets", "child_level",
    "children_of", "city_view", "clear_metrics_memo", "data_as_of", "data_info", "export_table",
    "filter_options", "monthly_trend", "nearest_stations", "peer_comparison", "scoped_cases",
    "street_view", "unit_metrics", "unit_of", "unit_path", "village_view",
]
