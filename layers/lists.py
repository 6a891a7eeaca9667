"""Work lists a clerk tracks (工作清单): which cases, in what order, with which deadline.

A list is a rule mask of :mod:`layers.rules` over the cases a view selects
(:func:`layers.metrics.case_selection`: the filters, registered in the window) inside one unit,
so its length is by construction the matching count of :func:`layers.metrics.compute_metrics`
(the 超期未办结 list has exactly as many cases as the 超期未办结 figure). Rows are chosen and
ordered on the columnar table; only the rows shown are then read from SQL, by case id, for the
columns the table does not hold (承办单位, 包案领导, the masked petitioner name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from geo import schema
from geo.privacy import mask_name
from geo.store import Store
from geo.vocab import STATUS_ZH
from layers.casedata import (
    NULL,
    CaseTable,
    as_datetime64,
    case_table,
    day_of_number,
    minutes_to_datetime,
)
from layers.filters import Filters
from layers.metrics import case_selection
from layers.rules import URGENCY, URGENCY_ZH, CaseState, Rules, case_state, deadline_text
from layers.units import names_of

DEFAULT_LIMIT = 200
"""Rows a list shows at most; its total is always the full count."""
SQL_BATCH = 900
"""Case ids per ``IN (…)`` query (under SQLite's oldest parameter limit of 999)."""


@dataclass(frozen=True)
class ListRule:
    """One work list: the mask it shows, the count it equals, its deadline and its order.

    Attributes
    ----------
    mask
        A :class:`layers.rules.CaseState` mask, or ``is_repeat`` (the 重件 flag).
    count
        The :func:`layers.metrics.compute_metrics` column its length equals.
    deadline
        Which limit ``due`` and ``days_left`` show: handling, acceptance, followup, rating.
    since
        What ``waited_days`` counts from: reply (答复), backlog (列为积案), or None.
    newest_first
        Order by registration, newest first (instead of by the deadline, most urgent first).
    """

    name: str
    label_zh: str
    mask: str
    count: str
    deadline: str = "handling"
    since: str | None = None
    newest_first: bool = False


LISTS: dict[str, ListRule] = {rule.name: rule for rule in (
    ListRule("open", "未办结", "open", "open_cases"),
    ListRule("overdue", "超期未办结", "handling_overdue", "overdue_open"),
    ListRule("due_soon", "临期未办结", "handling_due_soon", "due_soon"),
    ListRule("acceptance", "待受理（受理期限）", "acceptance_pending", "acceptance_pending",
             deadline="acceptance"),
    ListRule("acceptance_overdue", "超期未受理", "acceptance_overdue", "acceptance_overdue",
             deadline="acceptance"),
    ListRule("reply", "待答复", "reply_pending", "reply_pending"),
    ListRule("followup", "待回访", "followup_pending", "followup_pending", deadline="followup",
             since="reply"),
    ListRule("rating", "待评价", "rating_pending", "rating_pending", deadline="rating",
             since="reply"),
    ListRule("backlog_open", "积案（未化解）", "backlog_open", "backlog_open", since="backlog"),
    ListRule("backlog_resolved", "积案（已化解）", "backlog_resolved", "backlog_resolved",
             since="backlog"),
    ListRule("repeats", "重复信访", "is_repeat", "repeat_num", newest_first=True),
)}
"""Every work list by name."""


@dataclass
class CaseList:
    """One work list of one unit: its total and the rows shown (most urgent first).

    ``rows`` columns: case_id, village_code, village_name, registered_at (datetime),
    status_zh, category, purpose, channel, urgency, urgency_zh, due (date or None),
    days_left (whole days, negative when overdue; None without a deadline), deadline_text
    (剩 3 天 / 今日到期 / 超期 11 天), waited_days (since the reply or the backlog listing),
    handling_unit, backlog_leader, repeat_of, petitioner_name (masked: 张**).
    """

    rule: ListRule
    total: int
    rows: pd.DataFrame
    as_of: datetime


def case_list(
    store: Store,
    code: str,
    name: str,
    *,
    filters: Filters | None = None,
    as_of: datetime | date | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> CaseList:
    """Return work list ``name`` (a key of :data:`LISTS`) of unit ``code``.

    Parameters
    ----------
    code
        The unit (the city holds every case, unassigned ones included).
    filters
        The view's filters and reporting window (the same cohort as the metrics).
    limit
        Rows returned at most (None: all); ``total`` counts them all.
    """
    return case_lists(store, code, {name: limit}, filters=filters, as_of=as_of)[name]


def case_lists(
    store: Store,
    code: str,
    limits: dict[str, int | None],
    *,
    filters: Filters | None = None,
    as_of: datetime | date | None = None,
) -> dict[str, CaseList]:
    """Return several work lists of one unit at once: {name: :class:`CaseList`}.

    One view shows eight lists; their rows come from one selection of the unit's cases and
    their SQL-only columns from one query for all the rows shown, not one per list.

    Parameters
    ----------
    limits
        List name (a key of :data:`LISTS`) → rows returned at most (None: all).
    """
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    filters = filters or Filters()
    selected = case_selection(table, state, filters) & table.in_unit(code)
    chosen: dict[str, tuple[np.ndarray, int]] = {}
    for name, limit in limits.items():
        rows = list_rows(table, state, LISTS[name], code=code, filters=filters,
                         selected=selected)
        chosen[name] = (rows if limit is None else rows[:limit], len(rows))
    shown = np.unique(np.concatenate([rows for rows, _ in chosen.values()] or
                                     [np.zeros(0, dtype=np.int64)]))
    common = _common_columns(store, table, state, shown)
    moment = minutes_to_datetime(state.as_of)
    return {name: CaseList(rule=LISTS[name], total=total,
                           rows=_frame(state, LISTS[name], rows, shown, common),
                           as_of=moment)
            for name, (rows, total) in chosen.items()}


def list_rows(table: CaseTable, state: CaseState, rule: ListRule, *, code: str,
              filters: Filters, selected: np.ndarray | None = None) -> np.ndarray:
    """The rows (positions in the case table) of a list, in the list's order.

    ``selected`` is the unit's selection (:func:`case_selection` within ``code``) when the
    caller already has it.
    """
    if selected is None:
        selected = case_selection(table, state, filters) & table.in_unit(code)
    mask = table.flags["is_repeat"] if rule.mask == "is_repeat" else state.mask(rule.mask)
    rows = np.flatnonzero(selected & mask)
    registered = table.minutes("registered_at")[rows]
    if rule.newest_first:
        return rows[np.argsort(-registered.astype(np.int64), kind="stable")]
    left = state.days_left(rule.deadline, rows).astype(np.int64)
    left = np.where(left == NULL, np.iinfo(np.int64).max, left)
    return rows[np.lexsort((registered, left))]


def ageing(store: Store, code: str, *, filters: Filters | None = None,
           as_of: datetime | date | None = None) -> pd.DataFrame:
    """Count open cases by days since registration: 0–15, 16–60, 61–90, over 90 days.

    Returns
    -------
    DataFrame
        Columns bucket (Chinese label), cases; always the four buckets in order.
    """
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    chosen = case_selection(table, state, filters or Filters()) & table.in_unit(code) & state.open
    days = state.as_of_day - table.days("registered_at")[chosen]
    counts = []
    for label, low, high in AGEING_BUCKETS:
        inside = days >= low
        if high is not None:
            inside &= days <= high
        counts.append({"bucket": label, "cases": int(inside.sum())})
    return pd.DataFrame(counts)


AGEING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–15天", 0, 15),
    ("16–60天", 16, 60),
    ("61–90天", 61, 90),
    (">90天", 91, None),
)
"""Ageing buckets (积压时长) of open cases: label, first day, last day (None = no limit)."""


def display_columns(engine: sa.Engine, case_ids: list[str], columns: tuple[str, ...]
                    ) -> pd.DataFrame:
    """Read some columns of some cases from SQL, by id, in batches; indexed by case id."""
    c = schema.cases.c
    rows: list[tuple] = []
    with engine.connect() as conn:
        for start in range(0, len(case_ids), SQL_BATCH):
            batch = case_ids[start:start + SQL_BATCH]
            query = sa.select(c.case_id, *[c[name] for name in columns]).where(
                c.case_id.in_(batch))
            rows.extend(map(tuple, conn.execute(query).all()))  # one fetchall; plain tuples
    frame = pd.DataFrame.from_records(rows, columns=["case_id", *columns])
    return frame.set_index("case_id")


# --------------------------------------------------------------------------- helpers


FRAME_COLUMNS = ("case_id", "village_code", "village_name", "registered_at", "status_zh",
                 "category", "purpose", "channel", "urgency", "urgency_zh", "due", "days_left",
                 "deadline_text", "waited_days", "handling_unit", "backlog_leader", "repeat_of",
                 "petitioner_name")


_SQL_COLUMNS = ("handling_unit", "backlog_leader", "repeat_of", "petitioner_name")
"""What a list shows that the columnar table does not hold (read by case id)."""


def _common_columns(store: Store, table: CaseTable, state: CaseState,
                    shown: np.ndarray) -> dict[str, np.ndarray]:
    """The columns every list shows, for all the rows shown by any list (``shown``, sorted).

    Built once per view, not once per list: a street view shows eight lists, mostly of the
    same cases, and each list's own frame then takes its rows from here.
    """
    ids = table.case_id.take(shown)
    village = pd.Series(_values(table, "village_code", shown), dtype=object)
    extra = _by_id(display_columns(store.engine, list(ids), _SQL_COLUMNS)) if len(ids) else {
        name: {} for name in _SQL_COLUMNS}
    urgency = np.asarray(URGENCY, dtype=object)[state.urgency[shown]]
    status = _values(table, "status", shown)

    def objects(values: list) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    sql = {name: objects([extra[name].get(i) for i in ids]) for name in _SQL_COLUMNS}
    return {
        "case_id": ids,
        "village_code": village.to_numpy(dtype=object),
        "village_name": names_of(store, village).replace("", "（未落到村居）").to_numpy(
            dtype=object),
        "registered_at": as_datetime64(table.minutes("registered_at")[shown]),
        "status_zh": objects([STATUS_ZH.get(v, v) for v in status]),
        "category": _values(table, "category", shown),
        "purpose": _values(table, "purpose", shown),
        "channel": _values(table, "channel", shown),
        "urgency": urgency,
        "urgency_zh": objects([URGENCY_ZH[u] for u in urgency]),
        **{name: sql[name] for name in ("handling_unit", "backlog_leader", "repeat_of")},
        "petitioner_name": objects([mask_name(v) for v in sql["petitioner_name"]]),
    }


def _frame(state: CaseState, rule: ListRule, rows: np.ndarray, shown: np.ndarray,
           common: dict[str, np.ndarray]) -> pd.DataFrame:
    """One list's rows: the shared columns taken at its rows, and its own deadline columns."""
    if not len(rows):
        return pd.DataFrame(columns=list(FRAME_COLUMNS))
    at = np.searchsorted(shown, rows)
    left = state.days_left(rule.deadline, rows)
    due = state.due_day(rule.deadline, rows)
    waited = None if rule.since is None else state.waited(rule.since, rows)
    left_days = [None if v == NULL else int(v) for v in left.tolist()]
    own = {
        "due": [None if d == NULL else day_of_number(d) for d in due.tolist()],
        "days_left": left_days,
        "deadline_text": [deadline_text(v) for v in left_days],
        "waited_days": [None] * len(rows) if waited is None else
        [None if d == NULL else int(d) for d in waited.tolist()],
    }
    shared = {name: common[name][at] for name in FRAME_COLUMNS if name not in own}
    return pd.DataFrame({  # one constructor per list; lists infer dtypes as before
        name: own[name] if name in own else
        shared[name] if shared[name].dtype != object else shared[name].tolist()
        for name in FRAME_COLUMNS})


def _by_id(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    """{column: {case_id: value}} of a :func:`display_columns` frame (NaN read as None)."""
    return {name: {i: (None if v is None or v != v else v)
                   for i, v in zip(frame.index, frame[name].tolist(), strict=True)}
            for name in frame.columns}


def _values(table: CaseTable, name: str, rows: np.ndarray) -> np.ndarray:
    """A categorical column's values at ``rows`` as objects (None where missing)."""
    values = table.memo(("object_values", name), lambda: np.append(
        np.asarray(table.categories(name), dtype=object), None))
    return values[table.codes(name)[rows]]  # code -1 (missing) reads the appended None

