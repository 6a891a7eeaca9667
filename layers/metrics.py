"""Per-unit metrics: case density and the resolution rates the 信访局 is judged by.

:func:`compute_metrics` returns one row per grid unit of a level, plus a city row (全市, every
case including unassigned ones) and an unassigned row (未落格). All work happens on the cached
in-memory case table (:mod:`layers.casedata`): each count, numerator and denominator is a
condition per case (one bit of a packed word, see "case masks" below), counted per unit with
``numpy.bincount`` on integer unit indices, so every level and every filter costs a handful of
array passes (≈30 ms for 2,851 villages over a million cases) and the results are exact.
Because counts are sums over the same case-to-unit index at every level, children add up to
their parent, and every rate at every level is recomputed from summed numerators and
denominators (never averaged).

Cohort rules (which cases a rate looks at for a reporting window) follow DOMAIN.md §2 and are
stated, in Chinese and English, in :mod:`layers.definitions` and docs/metrics.md.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from geo.errors import GridgovError
from geo.settings import Settings
from geo.store import Store
from geo.vocab import GOOD_RATINGS, LOCAL_LEVELS, RATING_EXPIRED, RATINGS
from layers.casedata import CaseTable, case_table, table_as_of
from layers.filters import Filters

RATES = (
    "timely_acceptance",
    "on_time_completion",
    "first_time_resolution",
    "satisfaction",
    "participation",
    "repeat",
    "backlog_clearance",
    "local_resolution",
)
"""Rate metrics; each yields columns R, R_num, R_den, R_rankable."""
COUNTS = ("cases", "open_cases", "overdue_open", "backlog_cases")
CITY_NAME = "全市"
UNASSIGNED_CODE = "unassigned"
UNASSIGNED_NAME = "未落格"
_UNIT_COLUMNS = (
    "code",
    "name",
    "level",
    "parent_code",
    "kind",
    "area_km2",
    "population",
    "population_estimated",
    "geometry_source",
)


def compute_metrics(
    store: Store,
    *,
    level: str,
    filters: Filters | None = None,
    parent_code: str | None = None,
    as_of: datetime | date | None = None,
    with_coverage: bool = False,
) -> pd.DataFrame:
    """Compute every metric for every unit of a level.

    Parameters
    ----------
    store
        The store; its settings give the deadlines, the rating window and the ranking
        threshold ``min_cases_for_rate``.
    level
        city, district, street, village or grid.
    filters
        Reporting window and attribute filters (default: everything).
    parent_code
        Only the children of this unit (e.g. the villages of one street); a ``parent`` row
        with the parent's own totals is added.
    as_of
        The moment "open", "overdue" and "rating window expired" are judged at; default
        :func:`layers.casedata.data_as_of` (the export date). Events after it are ignored.
    with_coverage
        Also merge the station-coverage columns of :func:`layers.coverage.compute_coverage`
        (heavier the first time; cached afterwards).

    Returns
    -------
    pandas.DataFrame
        Rows: one per unit (row_type ``unit``), then ``parent`` (only with parent_code),
        ``city`` and ``unassigned``. Columns: code, name, level, parent_code, row_type, kind,
        area_km2, population, population_estimated, geometry_source, cases, open_cases,
        overdue_open, cases_per_km2, cases_per_10k, backlog_cases, days_to_close_median,
        days_to_close_p90, and for each rate R of :data:`RATES`: R (0–1, NaN without a
        denominator), R_num, R_den, R_rankable (R_den ≥ min_cases_for_rate).
    """
    filters = filters or Filters()
    settings = store.settings
    table = case_table(store)
    _check_level(table, level, parent_code)
    moment = _resolve_as_of(table, as_of)
    selection = _select_cases(table, filters, settings=settings, as_of=moment)
    frame = _assemble_rows(
        table, level=level, parent_code=parent_code, selection=selection, settings=settings
    )
    if with_coverage:
        frame = _merge_coverage(store, frame, level=level)
    return frame


# --------------------------------------------------------------------------- validation


def _check_level(table: CaseTable, level: str, parent_code: str | None) -> None:
    if level not in table.levels:
        raise GridgovError(
            f"网格中没有“{level}”级单元，可选：{', '.join(table.levels)} / the grid has no units "
            f"of level {level!r}; choose one of {', '.join(table.levels)} (or run gridgov init)"
        )
    if parent_code is None:
        return
    found = any((index.units["code"] == parent_code).any() for index in table.levels.values())
    if not found:
        raise GridgovError(
            f"未找到上级单元 {parent_code} / parent unit {parent_code} is not in the current grid"
        )


def _resolve_as_of(table: CaseTable, as_of: datetime | date | None) -> np.datetime64:
    if as_of is None:
        as_of = table_as_of(table) or datetime.now()
    if isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of = datetime(as_of.year, as_of.month, as_of.day, 23, 59, 59)
    return np.datetime64(as_of.replace(microsecond=0), "s")


# --------------------------------------------------------------------------- case masks
#
# Every count, numerator and denominator is "a condition known once the data date is fixed"
# AND "one of six dates falls in the reporting window" AND "the case passes the filters".
# The first part is computed once per (loaded copy, as_of) and packed as one bit per output in
# a uint32 per case; a query only evaluates the six windows, looks up which bits they allow,
# and counts bits per unit with one bincount per 4 bits over (unit × nibble value): 16 slots
# per unit keep the count table small enough to stay in cache.

_WINDOWS = ("registered", "deadline", "due", "closed", "rating", "reply")
"""The date each cohort puts in the window: 登记, 受理期限 (登记 + 15 days), 办理期限, 办结,
评价 (else 答复/办结), 答复 (else 办结)."""
_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("cases", "registered"),
    ("open_cases", "registered"),
    ("overdue_open", "registered"),
    ("repeat_num", "registered"),
    ("backlog_cases", "registered"),
    ("backlog_clearance_num", "registered"),
    ("local_resolution_num", "registered"),
    ("local_resolution_den", "registered"),
    ("timely_acceptance_num", "deadline"),
    ("timely_acceptance_den", "deadline"),
    ("on_time_completion_num", "due"),
    ("on_time_completion_den", "due"),
    ("first_time_resolution_num", "closed"),
    ("first_time_resolution_den", "closed"),
    ("closed_in_window", "closed"),
    ("satisfaction_num", "rating"),
    ("satisfaction_den", "rating"),
    ("participation_num", "reply"),
    ("participation_den", "reply"),
)
"""Each output (a count, numerator or denominator) and the window its cohort uses."""
_ALIASES = {"repeat_den": "cases", "backlog_clearance_den": "backlog_cases"}
_BIT = {name: i for i, (name, _window) in enumerate(_OUTPUTS)}
_NULL_DAY = np.iinfo(np.int32).min
_NIBBLES = (len(_OUTPUTS) + 3) // 4
_NIBBLE_BITS = ((np.arange(16)[:, None] >> np.arange(4)[None, :]) & 1).astype(np.float64)


class _Selection:
    """The outcome bits of the selected cases, ready to be counted per unit of any level."""

    def __init__(self, bits: np.ndarray, rows: np.ndarray | None, close_mask: np.ndarray) -> None:
        self.bits = bits  # uint32 per selected case
        self.rows = rows  # indices of the selected cases, or None for all
        self.close_mask = close_mask  # full length: closed in the window and selected


def _select_cases(
    table: CaseTable, filters: Filters, *, settings: Settings, as_of: np.datetime64
) -> _Selection:
    """Apply the filters and the window: which outcome bits each selected case carries."""
    static = _static_bits(table, settings=settings, as_of=as_of)
    keep = attribute_mask(table, filters)
    if filters.status:
        by_status = {name: static[name] for name in ("open", "closed", "overdue")}
        status = np.logical_or.reduce([by_status[s] for s in filters.status])
        keep = status if keep is None else keep & status
    rows = None if keep is None else np.flatnonzero(keep)
    bits = static["bits"] if rows is None else static["bits"][rows]
    # A window without an end ends at the data's as-of day: a cohort whose date (a deadline)
    # lies after it belongs to a later reporting period, not to this one.
    end = filters.date_to or as_of.astype("datetime64[D]").astype(date)
    if filters.date_from is None and filters.date_to is None:
        allowed = table.memo(
            ("window_to_as_of", end, settings.acceptance_days),
            lambda: _window_mask(table, Filters(date_to=end), settings=settings, rows=None),
        )
        allowed = allowed if rows is None else allowed[rows]
    else:
        allowed = _window_mask(table, dataclasses.replace(filters, date_to=end), settings=settings,
                               rows=rows)
    bits = bits & allowed
    closed = ((bits >> _BIT["closed_in_window"]) & 1).astype(bool)
    if rows is None:
        close_mask = closed
    else:
        close_mask = np.zeros(len(table), dtype=bool)
        close_mask[rows[closed]] = True
    return _Selection(bits, rows, close_mask)


def _window_mask(
    table: CaseTable, filters: Filters, *, settings: Settings, rows: np.ndarray | None
) -> np.ndarray:
    """Per case, the output bits whose cohort date falls in the window (inclusive days)."""
    low = _NULL_DAY + 1 if filters.date_from is None else _day_number(filters.date_from)
    high = np.iinfo(np.int32).max if filters.date_to is None else _day_number(filters.date_to)
    days = _window_days(table, settings=settings)
    index = np.zeros(len(table) if rows is None else len(rows), dtype=np.uint8)
    for position, window in enumerate(_WINDOWS):
        day = days[window] if rows is None else days[window][rows]
        inside = (day >= low) & (day <= high)
        index |= inside.view(np.uint8) << np.uint8(position)
    return _window_lookup()[index]


@functools.cache
def _window_lookup() -> np.ndarray:
    """For each combination of the six windows (6-bit index), the output bits it allows."""
    lookup = np.zeros(1 << len(_WINDOWS), dtype=np.uint32)
    for combination in range(len(lookup)):
        for name, window in _OUTPUTS:
            if combination >> _WINDOWS.index(window) & 1:
                lookup[combination] |= np.uint32(1 << _BIT[name])
    return lookup


def _day_number(day: date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _window_days(table: CaseTable, *, settings: Settings) -> dict[str, np.ndarray]:
    """The six cohort dates as int32 day numbers (NULL → the smallest int32)."""

    def build() -> dict[str, np.ndarray]:
        registered = _as_day_numbers(table.days("registered_at"))
        deadline = np.where(registered == _NULL_DAY, _NULL_DAY,
                            registered + np.int32(settings.acceptance_days)).astype(np.int32)
        return {
            "registered": registered,
            "deadline": deadline,
            "due": _as_day_numbers(table.days("due_at")),
            "closed": _as_day_numbers(table.days("closed_at")),
            "rating": _as_day_numbers(_first_present(table, ("rated_at", "replied_at",
                                                              "closed_at"))),
            "reply": _as_day_numbers(_first_present(table, ("replied_at", "closed_at"))),
        }

    return table.memo(("window_days", settings.acceptance_days), build)


def _as_day_numbers(days: np.ndarray) -> np.ndarray:
    numbers = days.astype(np.int64)
    numbers[np.isnat(days)] = _NULL_DAY
    return numbers.astype(np.int32)


def _static_bits(
    table: CaseTable, *, settings: Settings, as_of: np.datetime64
) -> dict[str, np.ndarray]:
    """The as-of conditions of every output, packed one bit per output (cached per as_of)."""
    key = ("static", as_of, settings.acceptance_days, settings.rating_window_days)
    cached = table.memo("static_cache", dict)
    entry = cached.get(key)
    if entry is None:
        entry = _build_static_bits(table, settings=settings, as_of=as_of)
        cached.clear()  # one data date at a time: each entry holds a few arrays of n cases
        cached[key] = entry
    return entry


def _build_static_bits(
    table: CaseTable, *, settings: Settings, as_of: np.datetime64
) -> dict[str, np.ndarray]:
    """The cohort rules (DOMAIN.md §2; texts in layers.definitions) as as-of conditions."""
    as_of_day = as_of.astype("datetime64[D]")
    exists = table.array("registered_at") <= as_of
    closed = table.array("closed_at") <= as_of
    not_accepted = _is_value(table, "status", ("not_accepted",))
    open_ = ~closed & ~not_accepted
    due_day = table.days("due_at")
    overdue = open_ & (due_day < as_of_day)
    first = ~table.array("is_repeat")
    first_accepted = exists & first & ~not_accepted  # 初件, not 不予受理
    registered_day = table.days("registered_at")
    deadline_day = registered_day + np.timedelta64(settings.acceptance_days, "D")
    accepted = table.array("accepted_at") <= as_of
    rated = ~_is_missing(table, "rating") & ~(table.array("rated_at") > as_of)
    good = rated & _is_value(table, "rating", GOOD_RATINGS)
    repeated = table.array("repeated_at") <= as_of
    reply_day = _first_present(table, ("replied_at", "closed_at"))
    replied = reply_day <= as_of_day
    window_end = reply_day + np.timedelta64(settings.rating_window_days, "D")
    expired = ~rated & (
        (window_end < as_of_day) | _is_value(table, "rating_state", (RATING_EXPIRED,))
    )
    backlog = exists & table.array("is_backlog")
    known_level = exists & ~_is_missing(table, "registered_level")
    conditions = {
        "cases": exists,
        "open_cases": exists & open_,
        "overdue_open": exists & overdue,
        "repeat_num": exists & ~first,
        "backlog_cases": backlog,
        "backlog_clearance_num": backlog & closed,
        "local_resolution_num": known_level & _is_value(table, "registered_level",
                                                        LOCAL_LEVELS),
        "local_resolution_den": known_level,
        # 及时受理: accepted by 登记 + 15 days; the limit passed unaccepted counts as late
        "timely_acceptance_num": first_accepted & accepted
        & (table.days("accepted_at") <= deadline_day),
        "timely_acceptance_den": first_accepted & (accepted | (deadline_day < as_of_day)),
        # 按期办结: closed on or before the due date; all four outcomes in the denominator
        "on_time_completion_num": first_accepted & closed
        & (table.days("closed_at") <= due_day),
        "on_time_completion_den": first_accepted & ~np.isnat(due_day),
        # 一次性化解: closed 初件 rated 满意/基本满意 and never repeated (by as_of)
        "first_time_resolution_num": exists & closed & first & good & ~repeated,
        "first_time_resolution_den": exists & closed & first,
        "closed_in_window": exists & closed,
        "satisfaction_num": exists & good,
        "satisfaction_den": exists & rated & _is_value(table, "rating", RATINGS),
        # 参评率: 已评价 / (已评价 + 超期未评价) among replied cases
        "participation_num": exists & replied & rated,
        "participation_den": exists & replied & (rated | expired),
    }
    bits = np.zeros(len(table), dtype=np.uint32)
    for name, condition in conditions.items():
        bits |= condition.astype(np.uint32) << np.uint32(_BIT[name])
    days = _window_days(table, settings=settings)
    index = np.zeros(len(table), dtype=np.uint8)
    for position, window in enumerate(_WINDOWS):
        index |= (days[window] != _NULL_DAY).view(np.uint8) << np.uint8(position)
    return {
        "bits": bits,
        "not_null_mask": _window_lookup()[index],
        "open": open_,
        "closed": closed,
        "overdue": overdue,
    }


def attribute_mask(table: CaseTable, filters: Filters) -> np.ndarray | None:
    """Return which cases' category/purpose/channel pass the filters; None when none is set.

    Shared with :func:`layers.views.monthly_trend`, so the map and the trend select the same
    cases for the same filters.
    """
    keep = None
    for column in ("category", "purpose", "channel"):
        values = getattr(filters, column)
        if values:
            chosen = _is_value(table, column, values)
            keep = chosen if keep is None else keep & chosen
    return keep


def _is_value(table: CaseTable, column: str, values: tuple[str, ...]) -> np.ndarray:
    wanted = table.codes_of(column, values)
    codes = table.array(column)
    if len(wanted) == 0:
        return np.zeros(len(table), dtype=bool)
    if len(wanted) == 1:
        return codes == wanted[0]
    lookup = np.zeros(len(table.frame[column].cat.categories) + 1, dtype=bool)
    lookup[wanted + 1] = True
    return lookup[codes + 1]


def _is_missing(table: CaseTable, column: str) -> np.ndarray:
    return table.array(column) < 0


def _first_present(table: CaseTable, columns: tuple[str, ...]) -> np.ndarray:
    def build() -> np.ndarray:
        result = table.days(columns[0]).copy()
        for name in columns[1:]:
            missing = np.isnat(result)
            result[missing] = table.days(name)[missing]
        return result

    return table.memo(("first_present", columns), build)


# --------------------------------------------------------------------------- aggregation


def _bins(table: CaseTable, level: str) -> np.ndarray:
    """Per case: 0 when unassigned at this level, else 1 + the unit's row (int64)."""
    return table.memo(("bins", level),
                      lambda: table.levels[level].case_unit.astype(np.int64) + 1)


def _count_bits(bins: np.ndarray, bits: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Count every output bit per bin: one bincount per nibble over (bin × nibble value)."""
    base = bins * 16
    columns = []
    for nibble in range(_NIBBLES):
        values = (bits >> np.uint32(4 * nibble)) & np.uint32(15)
        table = np.bincount(base + values, minlength=size * 16).reshape(size, 16)
        columns.append(np.rint(table.astype(np.float64) @ _NIBBLE_BITS).astype(np.int64))
    per_bit = np.concatenate(columns, axis=1)
    sums = {name: per_bit[:, _BIT[name]] for name, _window in _OUTPUTS}
    sums.update({alias: sums[name] for alias, name in _ALIASES.items()})
    return sums


def _close_quantiles(
    table: CaseTable, level: str, close_mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Median and 90th percentile of days to close per bin and for all cases (exact, linear).

    Cases closed at some time are pre-sorted by (unit, days) once per loaded copy, so a query
    only masks the sorted arrays and reads the quantiles off per-unit offsets.
    """
    order, sorted_bins, sorted_days = table.memo(("close_order", level), lambda: _close_order(
        table, level))
    chosen = close_mask[order]
    bins = sorted_bins[chosen]
    days = sorted_days[chosen]
    counts = np.bincount(bins, minlength=size)
    median = _sorted_quantile(days, counts, 0.5)
    p90 = _sorted_quantile(days, counts, 0.9)
    if len(days):
        return median, p90, float(np.quantile(days, 0.5)), float(np.quantile(days, 0.9))
    return median, p90, float("nan"), float("nan")


def _close_order(table: CaseTable, level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    closed_at = table.array("closed_at")
    seconds = (closed_at - table.array("registered_at")).astype("timedelta64[s]").astype(np.int64)
    days = seconds / 86400.0
    candidates = np.flatnonzero(~np.isnat(closed_at))
    bins = _bins(table, level)[candidates]
    local = np.lexsort((days[candidates], bins))
    order = candidates[local]
    return order, bins[local], days[order]


def _sorted_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """numpy's default (linear) quantile of each run of ``values`` whose lengths are ``counts``."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    result = np.full(len(counts), np.nan)
    has = counts > 0
    position = q * (counts[has] - 1)
    low = np.floor(position).astype(np.int64)
    high = np.ceil(position).astype(np.int64)
    base = starts[has]
    v_low = values[base + low]
    v_high = values[base + high]
    result[has] = v_low + (v_high - v_low) * (position - low)
    return result


def _level_sums(table: CaseTable, level: str, selection: _Selection) -> dict[str, np.ndarray]:
    """Sum every output per bin of a level; the city-wide totals appended as the last bin."""
    bins = _bins(table, level)
    if selection.rows is not None:
        bins = bins[selection.rows]
    size = len(table.levels[level].units) + 1
    sums = _count_bits(bins, selection.bits, size)
    median, p90, city_median, city_p90 = _close_quantiles(table, level, selection.close_mask,
                                                          size)
    sums = {name: np.append(array, array.sum()) for name, array in sums.items()}
    sums["days_to_close_median"] = np.append(median, city_median)
    sums["days_to_close_p90"] = np.append(p90, city_p90)
    return sums


def _assemble_rows(
    table: CaseTable,
    *,
    level: str,
    parent_code: str | None,
    selection: _Selection,
    settings: Settings,
) -> pd.DataFrame:
    units = table.levels[level].units
    sums = _level_sums(table, level, selection)
    # bins: 0 unassigned, 1..n units, n+1 city (appended total)
    n = len(units)
    rows = np.arange(1, n + 1)
    if parent_code is not None:
        rows = rows[(units["parent_code"] == parent_code).to_numpy()]
    pick = np.concatenate([rows, [n + 1, 0]])
    values = {name: array[pick] for name, array in sums.items()}
    info = _unit_info(units.iloc[rows - 1], row_type="unit")
    info = pd.concat(
        [info, _city_info(table, level), _unassigned_info(level)], ignore_index=True
    )
    if parent_code is not None:
        parent_info, parent_values = _parent_row(table, parent_code, selection)
        info = pd.concat([info.iloc[:-2], parent_info, info.iloc[-2:]], ignore_index=True)
        values = {
            name: np.concatenate([array[:-2], [parent_values[name]], array[-2:]])
            for name, array in values.items()
        }
    return _finish_frame(info, values, settings=settings)


def _parent_row(
    table: CaseTable, parent_code: str, selection: _Selection
) -> tuple[pd.DataFrame, dict[str, Any]]:
    for level, index in table.levels.items():
        hit = np.flatnonzero((index.units["code"] == parent_code).to_numpy())
        if len(hit):
            sums = _level_sums(table, level, selection)
            position = hit[0] + 1
            info = _unit_info(index.units.iloc[[hit[0]]], row_type="parent")
            return info, {name: array[position] for name, array in sums.items()}
    raise GridgovError(f"未找到上级单元 / parent unit {parent_code} is not in the current grid")


def _unit_info(units: pd.DataFrame, *, row_type: str) -> pd.DataFrame:
    info = units.loc[:, [c for c in _UNIT_COLUMNS if c in units]].reset_index(drop=True).copy()
    info.insert(4, "row_type", row_type)
    return info


def _city_info(table: CaseTable, level: str) -> pd.DataFrame:
    city = table.levels.get("city")
    if city is not None and len(city.units) == 1:
        unit = city.units.iloc[0]
        code, area, population, estimated = (
            unit["code"], unit["area_km2"], unit["population"], bool(unit["population_estimated"])
        )
    else:
        units = table.levels[level].units
        code = "city"
        area = float(units["area_km2"].sum())
        population = units["population"].sum() if units["population"].notna().all() else np.nan
        estimated = bool(units["population_estimated"].any())
    return pd.DataFrame([{
        "code": code, "name": CITY_NAME, "level": "city", "parent_code": None,
        "row_type": "city", "kind": None, "area_km2": area, "population": population,
        "population_estimated": estimated, "geometry_source": None,
    }])


def _unassigned_info(level: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "code": UNASSIGNED_CODE, "name": UNASSIGNED_NAME, "level": level, "parent_code": None,
        "row_type": "unassigned", "kind": None, "area_km2": np.nan, "population": np.nan,
        "population_estimated": False, "geometry_source": None,
    }])


def _finish_frame(
    info: pd.DataFrame, values: dict[str, np.ndarray], *, settings: Settings
) -> pd.DataFrame:
    out: dict[str, Any] = {column: info[column].to_numpy() for column in info.columns}
    area = pd.to_numeric(info["area_km2"], errors="coerce").to_numpy(dtype=float)
    population = pd.to_numeric(info["population"], errors="coerce").to_numpy(dtype=float)
    out["area_km2"] = area
    out["population"] = population
    for name in ("cases", "open_cases", "overdue_open"):
        out[name] = values[name].astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cases = values["cases"].astype(float)
        out["cases_per_km2"] = np.where(area > 0, cases / area, np.nan)
        out["cases_per_10k"] = np.where(population > 0, cases / population * 10_000, np.nan)
        for rate in RATES:
            num = values[f"{rate}_num"].astype(np.int64)
            den = values[f"{rate}_den"].astype(np.int64)
            out[rate] = np.where(den > 0, num / np.maximum(den, 1), np.nan)
            out[f"{rate}_num"] = num
            out[f"{rate}_den"] = den
            out[f"{rate}_rankable"] = den >= settings.min_cases_for_rate
    out["backlog_cases"] = values["backlog_cases"].astype(np.int64)
    out["days_to_close_median"] = values["days_to_close_median"].astype(float)
    out["days_to_close_p90"] = values["days_to_close_p90"].astype(float)
    frame = pd.DataFrame(out)
    frame["population_estimated"] = frame["population_estimated"].astype(bool)
    return frame


def _merge_coverage(store: Store, frame: pd.DataFrame, *, level: str) -> pd.DataFrame:
    from layers.coverage import COVERAGE_COLUMNS, compute_coverage

    coverage = compute_coverage(store, level=level)
    columns = [c for c in COVERAGE_COLUMNS if c not in ("code", "uncovered")]
    table = pd.DataFrame(coverage[["code", *columns]])
    return frame.merge(table, on="code", how="left")
