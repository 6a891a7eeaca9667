"""The dashboard's screens as data: one assembler per view, thin over metrics, lists and units.

Every view is computed for one unit scope (a division code): the city leaders' view (领导视图)
for the city or a district, the street office view (街道视图) for one street, the grid worker
view (网格员视图) for one village. Taking the scope as an argument, rather than reading it from a
session, is what lets the server decide per request which codes a user may pass.

The numbers come from :func:`layers.metrics.compute_metrics` (memoised in the store per store
version and arguments), the lists from :mod:`layers.lists`, both over the same rules
(:mod:`layers.rules`), so a card's count and its list's length are the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from geo import schema
from geo.codes import level_of
from geo.crs import lonlat_to_xy
from geo.errors import CodeError
from geo.store import Store, read_units
from geo.vocab import CITY_CODE, LEVEL_NAMES_ZH, STATION_TYPE_ZH
from layers.casedata import NULL, case_table, minutes_to_datetime, table_as_of
from layers.filters import Filters
from layers.lists import CaseList, ageing, case_lists
from layers.metrics import compute_metrics, monthly_metrics
from layers.units import Unit, child_level, children_of, unit_of

NO_FILTERS = Filters()


@dataclass(frozen=True)
class DataInfo:
    """What the data is: its date range, its "as of" time, its size, and whether it is synthetic."""

    date_from: date | None
    date_to: date | None
    as_of: datetime | None
    cases: int
    synthetic: bool


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
    """Street office view (街道视图) of one street: its counts, work lists and villages."""

    unit: Unit
    as_of: datetime
    counts: dict
    open_by_village: pd.DataFrame
    ageing: pd.DataFrame
    lists: dict[str, CaseList]
    villages_without_station: pd.DataFrame


@dataclass
class VillageView:
    """Grid worker view (网格员视图) of one village: what is open and what to do today."""

    unit: Unit
    as_of: datetime
    counts: dict
    lists: dict[str, CaseList]
    nearest_stations: pd.DataFrame


STREET_LISTS = ("overdue", "due_soon", "acceptance", "followup", "rating", "backlog_open",
                "backlog_resolved", "repeats")
STREET_ROWS = 100
"""Rows of each street work list (街道视图) read at most, most urgent first (five pages of the
grid); the backlog lists are read whole (the 包案领导 summary counts them). The case table
export holds every case; reading 200 of each of six lists was half the view's time."""
VILLAGE_LISTS = ("open", "acceptance", "followup", "rating")
VILLAGE_ROWS = {"open": 50, "acceptance": 10, "followup": 10, "rating": 10}
"""Rows of each grid worker list (网格员视图) read at most, most urgent first; ``total`` counts
them all. A phone page of 300 cards is not read, and building it was most of the view's time
(docs/benchmarks.md, load); the case table export (案件表) holds every case."""


def data_info(store: Store, code: str = CITY_CODE) -> DataInfo:
    """Describe the cases of unit ``code``: date range (登记), "as of" time, count, synthetic flag.

    The range and the count are the unit's (an account sees no figure of cases outside its
    scope); the "as of" time is the export's, the same for every unit.
    """
    table = case_table(store)

    def synthetic() -> bool:
        query = sa.select(sa.func.max(sa.case((schema.cases.c.synthetic.is_(True), 1), else_=0)))
        with store.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    inside = table.in_unit(code)
    registered = table.minutes("registered_at")[inside]
    present = registered[registered != NULL]
    return DataInfo(
        date_from=minutes_to_datetime(int(present.min())).date() if len(present) else None,
        date_to=minutes_to_datetime(int(present.max())).date() if len(present) else None,
        as_of=table_as_of(table),
        cases=int(inside.sum()),
        synthetic=store.cached(("synthetic",), synthetic) if len(table) else False,
    )


def filter_options(store: Store, code: str = CITY_CODE) -> dict[str, list[str]]:
    """Return the category, purpose and channel values present in unit ``code``, sorted."""
    table = case_table(store)
    inside = table.in_unit(code)
    out = {}
    for name in ("category", "purpose", "channel"):
        codes = table.codes(name)[inside]
        used = np.unique(codes[codes >= 0])
        out[name] = sorted(str(v) for v in table.categories(name)[used])
    return out


def unit_metrics(
    store: Store,
    *,
    level: str,
    filters: Filters = NO_FILTERS,
    parent_code: str | None = None,
    as_of: datetime | date | None = None,
    with_coverage: bool = False,
) -> pd.DataFrame:
    """Return :func:`layers.metrics.compute_metrics`, memoised in the store per version.

    One page view asks for the same table several times at once (the map, the ranking, the
    KPIs); the store computes it once and makes concurrent callers wait for that computation.
    Callers must not modify the returned frame.
    """
    key = ("metrics", level, parent_code, filters, as_of, with_coverage)
    return store.cached(key, lambda: compute_metrics(
        store, level=level, filters=filters, parent_code=parent_code, as_of=as_of,
        with_coverage=with_coverage), shared=True)


def unit_row(store: Store, code: str, *, filters: Filters = NO_FILTERS,
             as_of: datetime | date | None = None) -> dict:
    """Return every metric of one unit (the city row for the city), {} when unknown."""
    unit = unit_of(store, code)
    if unit.level == "city":
        frame = unit_metrics(store, level="district", filters=filters, as_of=as_of)
        row = frame[frame["row_type"] == "city"]
    else:
        parent = unit.parent_code if unit.level != "district" else None
        frame = unit_metrics(store, level=unit.level, filters=filters, parent_code=parent,
                             as_of=as_of)
        row = frame[(frame["row_type"] == "unit") & (frame["code"] == code)]
    return row.iloc[0].to_dict() if len(row) else {}


def city_view(store: Store, code: str = CITY_CODE, *, filters: Filters = NO_FILTERS,
              as_of: datetime | date | None = None) -> CityView:
    """Compute the city leaders' view of ``code``: its KPIs and the ranking of its children.

    Units with fewer cases than ``min_cases_for_rate`` keep their counts but get no rank
    (``rank`` is NA), as the metrics' ``*_rankable`` flags say.
    """
    unit = unit_of(store, code)
    below = child_level(unit.level)
    level = below or unit.level
    parent = code if below else unit.parent_code
    metrics = unit_metrics(store, level=level, filters=filters,
                           parent_code=parent if unit.level != "city" else None, as_of=as_of)
    units = metrics[metrics["row_type"] == "unit"].copy()
    if level != "district" and parent:
        units = units[units["parent_code"] == parent]
    city_row = metrics[metrics["row_type"] == "city"]
    unassigned = metrics[metrics["row_type"] == "unassigned"]
    return CityView(
        unit=unit,
        kpis=unit_row(store, code, filters=filters, as_of=as_of),
        ranking=_rank_units(units),
        city=city_row.iloc[0].to_dict() if len(city_row) else {},
        unassigned_cases=int(unassigned["cases"].sum()) if len(unassigned) else 0,
        child_level=below,
    )


def peer_comparison(store: Store, code: str, *, metric: str, filters: Filters = NO_FILTERS,
                    as_of: datetime | date | None = None) -> pd.DataFrame:
    """Compare unit ``code`` on one metric with its peers (same parent) and the city.

    Returns
    -------
    DataFrame
        Columns code, name, value, num, den, role ('unit'|'peer'|'city'), sorted by value
        (best first when higher is better); the city row last.
    """
    unit = unit_of(store, code)
    if unit.level == "city":
        return pd.DataFrame(columns=["code", "name", "value", "num", "den", "role"])
    parent = unit.parent_code if unit.level != "district" else None
    metrics = unit_metrics(store, level=unit.level, filters=filters, parent_code=parent,
                           as_of=as_of)
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


def monthly_trend(store: Store, code: str, *, filters: Filters = NO_FILTERS, months: int = 12,
                  as_of: datetime | date | None = None) -> pd.DataFrame:
    """Return the monthly figures of unit ``code`` (:func:`layers.metrics.monthly_metrics`).

    Each month's counts and rates use the metrics' cohorts with that month as the window, so
    a month of the trend equals the KPI card for that month.
    """
    key = ("trend", code, filters, months, as_of)
    return store.cached(key, lambda: monthly_metrics(store, code, filters=filters,
                                                     months=months, as_of=as_of), shared=True)


def street_view(store: Store, street_code: str, *, filters: Filters = NO_FILTERS,
                as_of: datetime | date | None = None, focus: str | None = None) -> StreetView:
    """Compute the street office view of one street (镇街).

    ``focus`` (a village or grid of the street, chosen on the map) narrows the counts, the
    ageing and the work lists to it; the villages' table stays the street's, so the choice
    can be compared with its neighbours.

    Memoised in the store per version and arguments (:meth:`geo.store.Store.cached`): a
    street office comes back to its view after each case page, and its staff, its district's
    leaders and the city's open the same street. Callers must not modify the returned view.

    Raises
    ------
    CodeError
        ``street_code`` is not a current street, or ``focus`` is not inside it.
    """
    return store.cached(("street_view", street_code, filters, as_of, focus, STREET_ROWS),
                        lambda: _street_view(store, street_code, filters=filters, as_of=as_of,
                                             focus=focus), shared=True)


def _street_view(store: Store, street_code: str, *, filters: Filters,
                 as_of: datetime | date | None, focus: str | None) -> StreetView:
    """:func:`street_view`, computed from scratch."""
    unit = _require_level(store, street_code, "street")
    if focus is not None and (focus == street_code or not focus.startswith(street_code[:9])
                              or level_of(focus) not in ("village", "grid")):
        raise CodeError(f"{focus} 不是 {street_code} 的村居 / {focus} is not a village of "
                        f"{street_code}")
    villages = unit_metrics(store, level="village", filters=filters, parent_code=street_code,
                            as_of=as_of)
    counts = villages[villages["row_type"] == "parent"].iloc[0].to_dict()
    if focus is not None:
        counts = unit_row(store, focus, filters=filters, as_of=as_of)
    by_village = villages[villages["row_type"] == "unit"][["code", "name", "open_cases",
                                                           "overdue_open", "due_soon"]]
    shown = focus or street_code
    lists = case_lists(store, shown,
                       {name: None if name.startswith("backlog") else STREET_ROWS
                        for name in STREET_LISTS}, filters=filters, as_of=as_of)
    first = next(iter(lists.values()))
    return StreetView(
        unit=unit,
        as_of=first.as_of,
        counts=counts,
        open_by_village=by_village.sort_values(["open_cases", "code"], ascending=[False, True])
        .reset_index(drop=True),
        ageing=ageing(store, shown, filters=filters, as_of=as_of),
        lists=lists,
        villages_without_station=_villages_without_station(store, street_code),
    )


def village_view(store: Store, village_code: str, *, filters: Filters = NO_FILTERS,
                 as_of: datetime | date | None = None, nearest: int = 5) -> VillageView:
    """Compute the grid worker view of one village (村居), or of one basic grid (基础网格) of it.

    A grid worker may hold a basic grid below a village; the view is then that grid's.
    Memoised in the store per version and arguments, as :func:`street_view` is: a grid worker
    goes back to the list after each case page. Callers must not modify the returned view.
    """
    return store.cached(("village_view", village_code, filters, as_of, nearest,
                         tuple(VILLAGE_ROWS.items())),  # the rows read are part of the view
                        lambda: _village_view(store, village_code, filters=filters, as_of=as_of,
                                              nearest=nearest), shared=True)


def _village_view(store: Store, village_code: str, *, filters: Filters,
                  as_of: datetime | date | None, nearest: int) -> VillageView:
    """:func:`village_view`, computed from scratch."""
    unit = unit_of(store, village_code)
    if unit.level not in ("village", "grid"):
        raise CodeError(f"{village_code} 不是村居或网格代码 / {village_code} is not a village or "
                        "grid code")
    lists = case_lists(store, village_code, dict(VILLAGE_ROWS), filters=filters, as_of=as_of)
    return VillageView(
        unit=unit,
        as_of=lists["open"].as_of,
        counts=unit_row(store, village_code, filters=filters, as_of=as_of),
        lists=lists,
        nearest_stations=nearest_stations(store, village_code, limit=nearest),
    )


def nearest_stations(store: Store, code: str, *, limit: int = 5) -> pd.DataFrame:
    """Return the stations nearest to a unit's inner point, distances in metres (EPSG:4547).

    Returns
    -------
    DataFrame
        Columns station_id, name, station_type, type_zh, lon, lat, distance_m; nearest first.
        Cached until the data changes (a grid worker's every view shows them); callers must
        not modify it.
    """
    return store.cached(("nearest_stations", code, limit),
                        lambda: _nearest_stations(store, code, limit=limit))


def _nearest_stations(store: Store, code: str, *, limit: int) -> pd.DataFrame:
    point = inner_points(store, level_of(code)).get(code)
    if point is None:
        raise CodeError(f"没有代码为 {code} 的网格单元 / no current unit has code {code}")
    stations = station_table(store)
    if stations.empty:
        return stations.assign(type_zh=pd.Series(dtype=str), distance_m=pd.Series(dtype=float))
    x0, y0 = lonlat_to_xy(point[0], point[1])
    out = stations.copy()
    out["distance_m"] = np.hypot(out["x"] - x0, out["y"] - y0).round(0)
    out["type_zh"] = out["station_type"].map(STATION_TYPE_ZH)
    columns = ["station_id", "name", "station_type", "type_zh", "lon", "lat", "distance_m"]
    return out.sort_values("distance_m").head(limit)[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- private helpers


def _require_level(store: Store, code: str, level: str) -> Unit:
    unit = unit_of(store, code)
    if unit.level != level:
        raise CodeError(f"{code} 不是{LEVEL_NAMES_ZH[level]}代码 / {code} is not a {level} code")
    return unit


def station_table(store: Store) -> pd.DataFrame:
    """Every station (id, name, type, lon/lat, unit codes) with its EPSG:4547 position x/y.

    Cached in the store until the stations change (a case ingest does not re-read them).
    """
    engine = store.engine

    def stamp() -> tuple:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(
                "SELECT (SELECT max(run_id) FROM station), (SELECT count(*) FROM station)")).one())

    def build() -> pd.DataFrame:
        s = schema.station.c
        query = sa.select(s.station_id, s.name, s.station_type, s.lon, s.lat, s.village_code,
                          s.street_code, s.district_code, s.serves_code)
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(),
                                 columns=["station_id", "name", "station_type", "lon", "lat",
                                          "village_code", "street_code", "district_code",
                                          "serves_code"])
        x, y = lonlat_to_xy(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
        return frame.assign(x=x, y=y)

    return store.cached_on(("stations",), stamp, build)


def inner_points(store: Store, level: str) -> dict[str, tuple[float, float]]:
    """A point inside each unit of a level (for distances), cached per boundary version.

    The server warms the villages' before it forks: reading the village shapes for them was a
    third of a worker's first grid-worker view (0.1 of 0.32 s).
    """
    from geo.store import current_boundary_version

    engine = store.engine

    def build() -> dict[str, tuple[float, float]]:
        units = read_units(engine, level=level)
        points = units.geometry.representative_point()
        return {code: (p.x, p.y) for code, p in zip(units["code"], points, strict=True)}

    return store.cached_on(("inner_points", level), lambda: current_boundary_version(engine),
                           build)


def _villages_without_station(store: Store, street_code: str) -> pd.DataFrame:
    villages = children_of(store, street_code, level="village")
    codes = store.cached(("village_station_codes",), lambda: _served_codes(store))
    return villages[[code not in codes for code in villages["code"]]].reset_index(drop=True)


def _served_codes(store: Store) -> frozenset[str]:
    """Villages with a village station (村居服务站) in them or serving them."""
    stations = station_table(store)
    served = stations[stations["station_type"] == "station"]
    return frozenset(served["village_code"].dropna()) | frozenset(served["serves_code"].dropna())


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


__all__ = [
    "CITY_CODE", "CityView", "DataInfo", "StreetView", "Unit", "VillageView", "city_view",
    "data_info", "filter_options", "monthly_trend", "nearest_stations", "peer_comparison",
    "station_table",
    "street_view", "unit_metrics", "unit_row", "village_view",
]
