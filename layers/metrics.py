"""Per-unit metrics: case density, the work-list counts and the rates the 信访局 is judged by.

:func:`compute_metrics` returns one row per grid unit of a level, plus a city row (全市, every
case including unassigned ones) and an unassigned row (未落格). All work happens on the cached
columnar case table (:mod:`layers.casedata`) and the case rules (:mod:`layers.rules`): each
count, numerator and denominator is a rule mask (one bit of a packed word per case, see
"outputs" below), counted per unit with ``numpy.bincount`` on integer unit indices, so every
level and every filter costs a handful of array passes (≈30 ms for 2,851 villages over a
million cases) and the results are exact. Because counts are sums over the same case-to-unit
index at every level, children add up to their parent, and every rate at every level is
recomputed from summed numerators and denominators (never averaged).

:func:`monthly_metrics` counts the same outputs per calendar month of each one's cohort date,
so a month of the trend equals :func:`compute_metrics` with that month as the window.

Cohort rules (which cases a rate looks at for a reporting window) are stated, in Chinese and
English, in :mod:`layers.definitions` and docs/metrics.md.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from geo.errors import GridgovError
from geo.store import Store
from geo.vocab import GOOD_RATINGS, LOCAL_LEVELS, RATINGS
from layers.casedata import NULL, CaseTable, case_table, day_number, day_of_number
from layers.filters import Filters
from layers.rules import CaseState, Rules, case_state

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
COUNTS = (
    "cases", "open_cases", "overdue_open", "due_soon", "acceptance_pending",
    "acceptance_overdue", "acceptance_due_soon", "reply_pending", "followup_pending",
    "followup_overdue", "rating_pending", "backlog_cases", "backlog_open", "backlog_resolved",
)
"""Counts of cases registered in the window; each is one mask of :mod:`layers.rules`."""
COUNT_MASKS = {
    "open_cases": "open",
    "overdue_open": "handling_overdue",
    "due_soon": "handling_due_soon",
    "acceptance_pending": "acceptance_pending",
    "acceptance_overdue": "acceptance_overdue",
    "acceptance_due_soon": "acceptance_due_soon",
    "reply_pending": "reply_pending",
    "followup_pending": "followup_pending",
    "followup_overdue": "followup_overdue",
    "rating_pending": "rating_pending",
    "backlog_open": "backlog_open",
    "backlog_resolved": "backlog_resolved",
}
"""Count column → the :class:`layers.rules.CaseState` mask it counts (lists use the same)."""
CITY_NAME = "全市"
UNASSIGNED_CODE = "unassigned"
UNASSIGNED_NAME = "未落格"
STATUS_MASKS = {"open": "open", "closed": "closed", "overdue": "handling_overdue"}
"""Status filter value → the rule mask it keeps."""
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
        The moment deadlines are judged at; default :func:`layers.casedata.data_as_of` (the
        export date). Events after it are ignored.
    with_coverage
        Also merge the station-coverage columns of :func:`layers.coverage.compute_coverage`
        (heavier the first time; cached afterwards).

    Returns
    -------
    pandas.DataFrame
        Rows: one per unit (row_type ``unit``), then ``parent`` (only with parent_code),
        ``city`` and ``unassigned``. Columns: code, name, level, parent_code, row_type, kind,
        area_km2, population, population_estimated, geometry_source, every count of
        :data:`COUNTS`, cases_per_km2, cases_per_10k, days_to_close_median,
        days_to_close_p90, and for each rate R of :data:`RATES`: R (0–1, NaN without a
        denominator), R_num, R_den, R_rankable (R_den ≥ min_cases_for_rate).
    """
    filters = filters or Filters()
    table = case_table(store)
    _check_level(table, level, parent_code)
    rules = Rules.of(store.settings)
    state = case_state(table, rules, as_of)
    selection = _selection(table, state, filters, rules=rules)
    frame = _assemble_rows(table, level=level, parent_code=parent_code, selection=selection,
                           min_cases=store.settings.min_cases_for_rate)
    if with_coverage:
        frame = _merge_coverage(store, frame, level=level)
    return frame


def monthly_metrics(
    store: Store,
    code: str,
    *,
    filters: Filters | None = None,
    months: int = 12,
    as_of: datetime | date | None = None,
) -> pd.DataFrame:
    """Count every output of unit ``code`` per calendar month of its cohort date.

    The date window of ``filters`` is ignored (the months are the window); the attribute and
    status filters apply. Each month's counts and rates equal :func:`compute_metrics` with that
    month as the window (the current month ends on the data date).

    Returns
    -------
    pandas.DataFrame
        One row per month (``month`` as YYYY-MM, oldest first), ``month_start``,
        ``month_end`` (the data date for the current month), ``partial`` (the month is cut
        by the data date), every count of :data:`COUNTS`, ``closed_in_window`` and for each
        rate R: R, R_num, R_den, R_rankable (R_den ≥ ``min_cases_for_rate``, as for units).
    """
    filters = dataclasses.replace(filters or Filters(), date_from=None, date_to=None)
    table = case_table(store)
    rules = Rules.of(store.settings)
    state = case_state(table, rules, as_of)
    keep = filter_mask(table, state, filters)
    unit = table.in_unit(code)
    keep = unit if keep is None else keep & unit
    rows = np.flatnonzero(keep & state.exists)
    bits = _outcome_bits(table, state, rules)[rows]
    end = pd.Period(day_of_number(state.as_of_day), freq="M")
    periods = pd.period_range(end=end, periods=months, freq="M")
    first_day = day_number(periods[0].start_time.date())
    starts = np.array([day_number(p.start_time.date()) for p in periods] + [
        state.as_of_day + 1], dtype=np.int64)
    sums: dict[str, np.ndarray] = {}
    for window in _WINDOWS:  # one window's months at a time, for all its outputs: a filtered
        # city trend at 10,000,000 cases spent most of its 0.7 s redoing them per output
        day = _cohort_day(table, rules, window, rows).astype(np.int64)
        inside = (day >= first_day) & (day <= state.as_of_day) & (day != NULL)
        month = np.searchsorted(starts, day, side="right") - 1
        for name in _OUTPUTS_OF[window]:
            chosen = inside & ((bits >> np.uint32(_BIT[name])) & 1).astype(bool)
            sums[name] = np.bincount(month[chosen], minlength=months)[:months]
    sums.update({alias: sums[name] for alias, name in _ALIASES.items()})
    out: dict[str, Any] = {
        "month": [str(p) for p in periods],
        "month_start": [p.start_time.date() for p in periods],
        "month_end": [min(p.end_time.date(), day_of_number(state.as_of_day)) for p in periods],
        "partial": [p.end_time.date() > day_of_number(state.as_of_day) for p in periods],
    }
    for name in (*COUNTS, "closed_in_window"):
        out[name] = sums[name].astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for rate in RATES:
            num, den = sums[f"{rate}_num"], sums[f"{rate}_den"]
            out[rate] = np.where(den > 0, num / np.maximum(den, 1), np.nan)
            out[f"{rate}_num"], out[f"{rate}_den"] = num.astype(np.int64), den.astype(np.int64)
            out[f"{rate}_rankable"] = den >= store.settings.min_cases_for_rate
    return pd.DataFrame(out)


def filter_mask(table: CaseTable, state: CaseState, filters: Filters) -> np.ndarray | None:
    """Return which cases pass the attribute and status filters; None when none is set.

    Shared by metrics, lists, maps and exports, so they select the same cases.
    """
    keep = None
    for column in ("category", "purpose", "channel"):
        values = getattr(filters, column)
        if values:
            chosen = table.is_value(column, values)
            keep = chosen if keep is None else keep & chosen
    if filters.status:
        status = np.logical_or.reduce([state.mask(STATUS_MASKS[s]) for s in filters.status])
        keep = status if keep is None else keep & status
    return keep


def registered_window(table: CaseTable, state: CaseState, filters: Filters) -> np.ndarray:
    """Cases registered (登记) in the filters' window; a window without an end ends on the data date."""
    low = NULL + 1 if filters.date_from is None else day_number(filters.date_from)
    high = state.as_of_day if filters.date_to is None else day_number(filters.date_to)
    day = table.days("registered_at")
    return (day >= low) & (day <= high) & (day != NULL)


def case_selection(table: CaseTable, state: CaseState, filters: Filters) -> np.ndarray:
    """The cases a view of ``filters`` is about: filters, registered in the window, existing.

    The cohort of every count of :data:`COUNTS`; lists take a rule mask of these.
    """
    keep = registered_window(table, state, filters) & state.exists
    extra = filter_mask(table, state, filters)
    return keep if extra is None else keep & extra


def output_mask(table: CaseTable, state: CaseState, rules: Rules, name: str) -> np.ndarray:
    """Return which cases carry one output (a count, numerator or denominator) on the data date.

    The rule alone, without the reporting window: pair it with :func:`output_day` to choose a
    window. For readers that group cases by something other than a unit (the 显微镜's handling
    units), so they count exactly what the metrics count.
    """
    name = _ALIASES.get(name, name)
    if name not in _BIT:
        raise KeyError(f"unknown metric output {name!r}")
    return ((_outcome_bits(table, state, rules) >> np.uint32(_BIT[name])) & 1).astype(bool)


def output_day(table: CaseTable, rules: Rules, name: str) -> np.ndarray:
    """Return the cohort date (int32 day numbers, NULL when missing) one output is windowed by."""
    name = _ALIASES.get(name, name)
    window = dict(_OUTPUTS)[name]
    return _cohort_day(table, rules, window)


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


# --------------------------------------------------------------------------- outputs
#
# Every count, numerator and denominator is "a rule mask on the data date" AND "one of six
# dates falls in the reporting window" AND "the case passes the filters". The first part is
# computed once per (loaded copy, data date) and packed as one bit per output in a uint32 per
# case; a query only evaluates the six windows, looks up which bits they allow, and counts
# bits per unit with one bincount per 4 bits over (unit × nibble value): 16 slots per unit
# keep the count table small enough to stay in cache.

_WINDOWS = ("registered", "deadline", "due", "closed", "rating", "reply")
"""The date each cohort puts in the window: 登记, 受理期限 (登记 + 15 days), 办理期限, 办结,
评价 (else 答复/办结), 答复 (else 办结)."""
_OUTPUTS: tuple[tuple[str, str], ...] = (
    *((name, "registered") for name in COUNTS),
    ("repeat_num", "registered"),
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
_ALIASES = {"repeat_den": "cases", "backlog_clearance_den": "backlog_cases",
            "backlog_clearance_num": "backlog_resolved"}
_BIT = {name: i for i, (name, _window) in enumerate(_OUTPUTS)}
_OUTPUTS_OF = {window: tuple(name for name, w in _OUTPUTS if w == window) for window in _WINDOWS}
"""The outputs counted in each window, for :func:`monthly_metrics`."""
_NIBBLES = (len(_OUTPUTS) + 3) // 4
_NIBBLE_BITS = ((np.arange(16)[:, None] >> np.arange(4)[None, :]) & 1).astype(np.float64)
assert len(_OUTPUTS) <= 32, "the outcome bits must fit a uint32"


class _Selection:
    """The outcome bits of the selected cases, ready to be counted per unit of any level."""

    def __init__(self, bits: np.ndarray, rows: np.ndarray | None, close_mask: np.ndarray,
                 key: Any = None) -> None:
        self.bits = bits  # uint32 per selected case
        self.rows = rows  # indices of the selected cases, or None for all
        self.close_mask = close_mask  # full length: closed in the window and selected
        self.key = key  # (filters, data date, rules): equal keys select the same cases


SELECTIONS_KEPT = 4
"""Filtered selections kept per case table (a few MB each at 1,000,000 cases)."""


def _selection(table: CaseTable, state: CaseState, filters: Filters, *,
               rules: Rules) -> _Selection:
    """:func:`_select_cases`, kept for the last few filters of the table.

    A filtered view asks for the same selection at several levels and parents at once (the
    map and the KPIs by district, the ranking and 两强 by street): one selection (≈10 ms at a
    million cases) for all of them. The unfiltered view's level sums are kept already, and its
    selection (the size of the table) is not worth holding in every worker.
    """
    if filters == Filters():
        return _select_cases(table, state, filters, rules=rules)
    return _kept(table, "selections", (filters, state.as_of, rules), SELECTIONS_KEPT,
                 lambda: _select_cases(table, state, filters, rules=rules))


def _kept(table: CaseTable, name: str, key: Any, limit: int, build: Callable[[], Any]) -> Any:
    """``build()``, kept in the table's memo ``name`` for the last ``limit`` keys asked.

    Built outside the lock, so other keys go on meanwhile; a new data version is a new table,
    so nothing kept outlives the data it was computed from.
    """
    kept = table.memo(name, OrderedDict)
    lock = table.memo(name + "_lock", threading.Lock)
    with lock:
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
    value = build()
    with lock:
        kept[key] = value
        while len(kept) > limit:
            kept.popitem(last=False)
    return value


def _select_cases(table: CaseTable, state: CaseState, filters: Filters, *,
                  rules: Rules) -> _Selection:
    """Apply the filters and the window: which outcome bits each selected case carries."""
    static = _outcome_bits(table, state, rules)
    keep = filter_mask(table, state, filters)
    rows = None if keep is None else np.flatnonzero(keep)
    bits = static if rows is None else static[rows]
    # A window without an end ends on the data day: a cohort whose date (a deadline) lies
    # after it belongs to a later reporting period, not to this one.
    end = filters.date_to or day_of_number(state.as_of_day)
    if filters.date_from is not None and filters.date_from > end:
        # a window opening after the data day holds no cohort yet: nothing, not an error
        allowed = np.zeros(len(bits), dtype=bits.dtype)
    elif filters.date_from is None and filters.date_to is None:
        window = dataclasses.replace(filters, date_to=end)
        # the 6-bit window index is kept (one byte per case), not its uint32 output bits
        index = table.memo(("window_to_as_of", end, rules.acceptance_days),
                           lambda: _window_index(table, window, rules=rules, rows=None))
        allowed = _window_lookup()[index if rows is None else index[rows]]
    else:
        window = dataclasses.replace(filters, date_to=end)
        allowed = _window_lookup()[_window_index(table, window, rules=rules, rows=rows)]
    bits = bits & allowed
    closed = ((bits >> _BIT["closed_in_window"]) & 1).astype(bool)
    if rows is None:
        close_mask = closed
    else:
        close_mask = np.zeros(len(table), dtype=bool)
        close_mask[rows[closed]] = True
    return _Selection(bits, rows, close_mask, key=(filters, state.as_of, rules))


def _window_index(table: CaseTable, filters: Filters, *, rules: Rules,
                  rows: np.ndarray | None) -> np.ndarray:
    """Per case, which of the six cohort dates fall in the window (inclusive days), as a 6-bit
    index into :func:`_window_lookup` (uint8)."""
    low = NULL + 1 if filters.date_from is None else day_number(filters.date_from)
    high = np.iinfo(np.int32).max if filters.date_to is None else day_number(filters.date_to)
    index = np.zeros(len(table) if rows is None else len(rows), dtype=np.uint8)
    for position, window in enumerate(_WINDOWS):
        day = _cohort_day(table, rules, window, rows)
        inside = (day >= low) & (day <= high)
        index |= inside.view(np.uint8) << np.uint8(position)
    return index


@functools.cache
def _window_lookup() -> np.ndarray:
    """For each combination of the six windows (6-bit index), the output bits it allows."""
    lookup = np.zeros(1 << len(_WINDOWS), dtype=np.uint32)
    for combination in range(len(lookup)):
        for name, window in _OUTPUTS:
            if combination >> _WINDOWS.index(window) & 1:
                lookup[combination] |= np.uint32(1 << _BIT[name])
    return lookup


def _cohort_day(table: CaseTable, rules: Rules, window: str,
                rows: np.ndarray | None = None) -> np.ndarray:
    """One cohort date (:data:`_WINDOWS`) as int32 day numbers (NULL → the smallest int32).

    ``rows`` selects some cases. The 受理期限 date (登记 + 15 days) is computed when asked, for
    the rows asked: kept, it would hold four bytes per case for one addition.
    """
    if window == "deadline":
        registered = table.days("registered_at", rows)
        return np.where(registered == NULL, NULL,
                        registered + np.int32(rules.acceptance_days)).astype(np.int32)
    if window in ("rating", "reply"):
        columns = (("rated_at",) if window == "rating" else ()) + ("replied_at", "closed_at")
        return _first_present(table, columns, rows)
    return table.days(_WINDOW_COLUMN[window], rows)


_WINDOW_COLUMN = {"registered": "registered_at", "due": "due_at", "closed": "closed_at"}
"""The cohort dates that are a kept day column of the table (see :data:`_WINDOWS`)."""


def _outcome_bits(table: CaseTable, state: CaseState, rules: Rules) -> np.ndarray:
    """Every output's rule on the data date, packed one bit per output (cached per state)."""
    cached = table.memo("outcome_bits", dict)
    key = (state.as_of, rules)
    if key not in cached:
        cached.clear()
        cached[key] = _build_outcome_bits(table, state, rules)
    return cached[key]


def _build_outcome_bits(table: CaseTable, state: CaseState, rules: Rules) -> np.ndarray:
    """The cohort rules (texts in layers.definitions) as masks of the case state."""
    exists = state.exists
    first = ~table.flags["is_repeat"]
    first_accepted = exists & first & ~state.not_accepted  # 初件, not 不予受理
    accepted_day = table.days("accepted_at")
    accepted_at = table.minutes("accepted_at")
    accepted_known = (accepted_at != NULL) & (accepted_at <= state.as_of)
    deadline_day = _cohort_day(table, rules, "deadline")
    due_day = table.days("due_at")
    closed_day = table.days("closed_at")
    good = state.rated & table.is_value("rating", GOOD_RATINGS)
    repeated_at = table.minutes("repeated_at")
    repeated = (repeated_at != NULL) & (repeated_at <= state.as_of)
    known_level = exists & ~table.is_missing("registered_level")
    conditions: dict[str, np.ndarray] = {"cases": exists}
    for count, mask in COUNT_MASKS.items():
        conditions[count] = exists & state.mask(mask)
    conditions.update({
        "backlog_cases": exists & table.flags["is_backlog"],
        "repeat_num": exists & ~first,
        "local_resolution_num": known_level & table.is_value("registered_level", LOCAL_LEVELS),
        "local_resolution_den": known_level,
        # 及时受理: accepted by 登记 + 15 days; the limit passed unaccepted counts as late
        "timely_acceptance_num": first_accepted & accepted_known & (accepted_day <= deadline_day),
        "timely_acceptance_den": first_accepted & (accepted_known
                                                   | (deadline_day < state.as_of_day)),
        # 按期办结: closed on or before the due date; all four outcomes in the denominator
        "on_time_completion_num": first_accepted & state.closed & (due_day != NULL)
        & (closed_day <= due_day),
        "on_time_completion_den": first_accepted & (due_day != NULL),
        # 一次性化解: closed 初件 rated 满意/基本满意 and never repeated (by as_of)
        "first_time_resolution_num": state.closed & first & good & ~repeated,
        "first_time_resolution_den": state.closed & first,
        "closed_in_window": state.closed,
        "satisfaction_num": good,
        "satisfaction_den": state.rated & table.is_value("rating", RATINGS),
        # 参评率: 已评价 / (已评价 + 超期未评价) among replied cases
        "participation_num": state.replied & state.rated,
        "participation_den": state.replied & (state.rated | state.rating_expired),
    })
    bits = np.zeros(len(table), dtype=np.uint32)
    for name, condition in conditions.items():
        bits |= condition.astype(np.uint32) << np.uint32(_BIT[name])
    return bits


def _first_present(table: CaseTable, columns: tuple[str, ...],
                   rows: np.ndarray | None = None) -> np.ndarray:
    """The day of the first of ``columns`` each case has (NULL: none), for ``rows`` or all.

    Computed when asked, not kept: a few milliseconds per million cases, against four bytes
    per case for each of the two windows that use it (issue 15's memory budget).
    """
    result = table.days(columns[0], rows)
    for name in columns[1:]:
        result = np.where(result == NULL, table.days(name, rows), result)
    return result


# --------------------------------------------------------------------------- aggregation


def _bins(table: CaseTable, level: str) -> np.ndarray:
    """Per case: 0 when unassigned at this level, else 1 + the unit's row (int32, not kept:
    it costs a millisecond, keeping it four bytes per case and level)."""
    return table.levels[level].case_unit.astype(np.int32) + np.int32(1)


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

    Cases closed at some time are pre-sorted by days to close once per loaded copy (only the
    order is kept: four bytes per closed case, for every level), so a query masks the sorted
    positions, groups them by unit with a stable sort of the unit indices (a radix sort of
    int16: about 10 ms per million cases, paid once per level and filter set, since level sums
    are kept), and reads the quantiles off per-unit offsets. A narrow filter (under
    1/:data:`_DIRECT_SORT_SHARE` of the closed cases) sorts its own cases instead.
    """
    order = table.memo("close_order", lambda: _close_order(table))
    if np.count_nonzero(close_mask) * _DIRECT_SORT_SHARE < len(order):
        # a narrow filter: sorting its few cases beats gathering the mask over every closed
        # case in days order (random reads: ~0.1 s at 10,000,000 cases); the stable sort of
        # positions gives the very same order
        chosen = np.flatnonzero(close_mask).astype(np.int32)
        chosen = chosen[np.argsort(_days_to_close(table, chosen), kind="stable")]
    else:
        chosen = order[close_mask[order]]
    units = table.levels[level].case_unit[chosen]
    by_unit = np.argsort(units, kind="stable")  # stable: days stay sorted within each unit
    chosen = chosen[by_unit]
    bins = units[by_unit].astype(np.int32) + np.int32(1)  # as _bins: 0 = unassigned
    days = _days_to_close(table, chosen)
    counts = np.bincount(bins, minlength=size)
    median = _sorted_quantile(days, counts, 0.5)
    p90 = _sorted_quantile(days, counts, 0.9)
    if len(days):
        return median, p90, float(np.quantile(days, 0.5)), float(np.quantile(days, 0.9))
    return median, p90, float("nan"), float("nan")


_DIRECT_SORT_SHARE = 16
"""A selection of fewer than 1/16 of the closed cases is sorted by days to close on its own
(a one-off timing of both ways on 10,000,000 random cases: 9 against 73 ms at 0.5 %, 35
against 91 ms at 2 %, even near 8 %)."""


def _days_to_close(table: CaseTable, rows: np.ndarray) -> np.ndarray:
    """Days from 登记 to 办结 (float32) of some closed cases: computed for the rows asked, not
    kept (four bytes per case for one subtraction)."""
    minutes = (table.minutes("closed_at")[rows].astype(np.int64)
               - table.minutes("registered_at")[rows].astype(np.int64))
    return (minutes / 1440.0).astype(np.float32)


def _close_order(table: CaseTable) -> np.ndarray:
    """Closed cases ordered by days to close, as int32 positions."""
    candidates = np.flatnonzero(table.minutes("closed_at") != NULL).astype(np.int32)
    return candidates[np.argsort(_days_to_close(table, candidates), kind="stable")]


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


LEVEL_SUMS_KEPT = 12
"""(level, selection) sums kept per loaded table: a few filter sets of every level (each a
few hundred KB), so the villages of every street come from one city-wide count."""


def _level_sums(table: CaseTable, level: str, selection: _Selection) -> dict[str, np.ndarray]:
    """Sum every output per bin of a level; the city-wide totals appended as the last bin.

    Kept per (level, selection) in the table: a street view asks for the villages of its own
    street, and every street shares the count over all villages (tens of milliseconds at a
    million cases) instead of paying it again; a new data version is a new table.
    """
    if selection.key is None:
        return _compute_level_sums(table, level, selection)
    return _kept(table, "level_sums", (level, selection.key), LEVEL_SUMS_KEPT,
                 lambda: _compute_level_sums(table, level, selection))


def _compute_level_sums(table: CaseTable, level: str, selection: _Selection
                        ) -> dict[str, np.ndarray]:
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
    min_cases: int,
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
    return _finish_frame(info, values, min_cases=min_cases)


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
    info: pd.DataFrame, values: dict[str, np.ndarray], *, min_cases: int
) -> pd.DataFrame:
    out: dict[str, Any] = {column: info[column].to_numpy() for column in info.columns}
    area = pd.to_numeric(info["area_km2"], errors="coerce").to_numpy(dtype=float)
    population = pd.to_numeric(info["population"], errors="coerce").to_numpy(dtype=float)
    out["area_km2"] = area
    out["population"] = population
    for name in COUNTS:
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
            out[f"{rate}_rankable"] = den >= min_cases
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
