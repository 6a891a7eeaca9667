"""The case rules (办理规则) in one place: what is open, overdue, due soon or pending on a data date.

Every count in :mod:`layers.metrics`, every work list in :mod:`layers.lists`, the map's point
colours, the case page, the exports and the trend read these masks and nothing else, so a case
is overdue in the same places on the same day. A property test keeps list lengths equal to the
metric counts.

The rules, judged at a data date ``as_of`` (by default the newest timestamp in the data):

* an event has *happened* when its timestamp is at or before ``as_of``;
* **open** (未办结): registered, not closed (办结), not 不予受理;
* **acceptance** (受理期限, 信访工作条例 Art. 22/23): an open case with no 受理 decision yet is
  *acceptance pending*; its limit is 登记 + 15 days; past it, *acceptance overdue* (超期未受理);
* **handling** (办理期限, Art. 34): due at ``due_at`` (given, else 受理 + 60 days, + 30 when
  extended); an open case past its due day is *overdue* (超期未办结); the reply (答复) has the
  same limit, so an accepted case not yet replied is *reply pending*;
* **due soon** (临期): a limit of which at least ``due_soon_share`` (80 %) has passed and which
  has not yet passed: acceptance from day 12, handling with 12 days (extended: 18) left;
* **follow-up** (回访): a replied case (答复, else 办结) not followed up is *follow-up pending*,
  due ``followup_days`` after the reply;
* **rating** (评价): a replied case not rated is *rating pending* while the rating window
  (``rating_window_days`` after the reply) is open, and *rating expired* (超期未评价) after it
  or when the source says so;
* **backlog** (积案): a backlog case is *open* or *resolved* (化解, closed); its age counts from
  when it was listed (``backlog_at``, else 登记).

Deadlines are whole calendar days: the due day itself is on time, the day after it is one day
overdue ("due 11-20, seen on 12-01: 超期 11 天"), whatever the hour of either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from geo.settings import Settings
from geo.vocab import RATING_EXPIRED
from layers.casedata import NULL, CaseTable, minutes_of, table_as_of

URGENCY = ("none", "ok", "soon", "overdue")
"""Urgency codes of :attr:`CaseState.urgency` (0 closed or not a case yet … 3 overdue)."""
URGENCY_ZH = {"none": "已结", "ok": "办理中", "soon": "临期", "overdue": "已超期"}


@dataclass(frozen=True)
class Rules:
    """The limits the rules use, taken from the settings (so they key caches too)."""

    acceptance_days: int
    rating_window_days: int
    followup_days: int
    due_soon_share: float

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        """Take the limits from validated settings."""
        return cls(settings.acceptance_days, settings.rating_window_days,
                   settings.followup_days, settings.due_soon_share)

    def soon_after(self, limit_days: np.ndarray | int) -> np.ndarray | int:
        """Days elapsed from which a limit of ``limit_days`` is 临期 (ceil of the share)."""
        if isinstance(limit_days, np.ndarray):
            return np.ceil(limit_days * self.due_soon_share - 1e-9).astype(np.int32)
        return math.ceil(limit_days * self.due_soon_share - 1e-9)


DEADLINES = ("acceptance", "handling", "followup", "rating")
"""The limits a case can have: 受理期限, 办理期限 (also the reply's), 回访期限, 评价期限."""


MASKS = (
    "exists", "closed", "not_accepted", "open", "accepted", "replied", "rated",
    "acceptance_pending", "acceptance_overdue", "acceptance_due_soon",
    "handling_overdue", "handling_due_soon", "reply_pending", "reply_overdue",
    "reply_due_soon", "followup_pending", "followup_overdue", "rating_pending",
    "rating_expired", "backlog_open", "backlog_resolved",
)
"""Names of every boolean mask of a :class:`CaseState` (each also an attribute)."""


def _mask(name: str) -> property:
    """A :class:`CaseState` attribute that unpacks one stored mask (see :data:`MASKS`)."""

    def get(state: CaseState) -> np.ndarray:
        return state.mask(name)

    return property(get, doc=f"``{name}`` per case (bool; a fresh array on every read).")


@dataclass
class CaseState:
    """Every case's state on one data date: named boolean masks, and day counts on demand.

    Masks are bool arrays over the whole case table, stored packed eight cases to a byte
    (``np.packbits``): the server keeps one state for the whole data date, and 21 masks of
    a million cases would otherwise hold 21 MB where they hold 2.6 MB. Unpacking one costs
    some 50 µs per million cases, and every read gives a fresh array (a caller may modify
    it). Deadlines and waiting times are computed for the rows asked for (:meth:`due_day`,
    :meth:`days_left`, :meth:`since_day`), not kept. Build with :func:`case_state`.
    """

    table: CaseTable = field(repr=False)
    rules: Rules
    as_of: int
    """The data date, as minutes since 1970."""
    as_of_day: int
    urgency: np.ndarray
    """Per case, an index into :data:`URGENCY` (int8)."""
    packed: dict[str, np.ndarray] = field(repr=False)
    """name → ``np.packbits`` of the mask, for every name in :data:`MASKS`."""

    MASKS = MASKS

    exists = _mask("exists")
    closed = _mask("closed")
    not_accepted = _mask("not_accepted")
    open = _mask("open")
    accepted = _mask("accepted")
    replied = _mask("replied")
    rated = _mask("rated")
    acceptance_pending = _mask("acceptance_pending")
    acceptance_overdue = _mask("acceptance_overdue")
    acceptance_due_soon = _mask("acceptance_due_soon")
    handling_overdue = _mask("handling_overdue")
    handling_due_soon = _mask("handling_due_soon")
    reply_pending = _mask("reply_pending")
    reply_overdue = _mask("reply_overdue")
    reply_due_soon = _mask("reply_due_soon")
    followup_pending = _mask("followup_pending")
    followup_overdue = _mask("followup_overdue")
    rating_pending = _mask("rating_pending")
    rating_expired = _mask("rating_expired")
    backlog_open = _mask("backlog_open")
    backlog_resolved = _mask("backlog_resolved")

    def mask(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Return one named mask (see :data:`MASKS`), or its values at ``rows`` (positions).

        With ``rows`` only those bits are read: a case page or an export chunk asks for a few
        rows of many masks, and should not unpack a million bits for each.
        """
        packed = self.packed.get(name)
        if packed is None:
            raise KeyError(f"unknown case-state mask {name!r}; one of {MASKS}")
        if rows is None:
            return np.unpackbits(packed, count=len(self.urgency)).view(bool)
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        bits = packed[rows >> 3] >> (7 - (rows & 7)).astype(np.uint8)  # packbits: big-endian
        return (bits & 1).astype(bool)

    def due_day(self, deadline: str, rows: np.ndarray) -> np.ndarray:
        """The day number each row's ``deadline`` falls on (NULL where it does not apply).

        ``acceptance``: 登记 + the acceptance limit, while acceptance is pending; ``handling``:
        办理期限 (extension aware) of every case that has one; ``followup``: reply + the
        follow-up limit, while a follow-up is pending; ``rating``: reply + the rating window,
        while a rating is pending.
        """
        rules, table = self.rules, self.table
        if deadline == "handling":
            return table.days("due_at", rows)
        if deadline == "acceptance":
            day = _plus(table.days("registered_at", rows), rules.acceptance_days)
            return np.where(self.mask("acceptance_pending", rows), day, NULL).astype(np.int32)
        if deadline == "followup":
            day = _plus(self.since_day("reply", rows), rules.followup_days)
            return np.where(self.mask("followup_pending", rows), day, NULL).astype(np.int32)
        if deadline == "rating":
            day = _plus(self.since_day("reply", rows), rules.rating_window_days)
            return np.where(self.mask("rating_pending", rows), day, NULL).astype(np.int32)
        raise KeyError(f"unknown deadline {deadline!r}; one of {DEADLINES}")

    def days_left(self, deadline: str, rows: np.ndarray) -> np.ndarray:
        """Whole days from the data date to each row's deadline (negative: overdue; NULL: none).

        For the handling limit only open cases have days left.
        """
        due = self.due_day(deadline, rows)
        left = _minus(due, self.as_of_day)
        if deadline == "handling":
            left = np.where(self.mask("open", rows), left, NULL).astype(np.int32)
        return left

    def since_day(self, since: str, rows: np.ndarray) -> np.ndarray:
        """The day each row's wait started: ``reply`` (答复, else 办结) or ``backlog`` (列为积案)."""
        table = self.table
        if since == "reply":
            replied = table.days("replied_at", rows)
            replied_at = table.minutes("replied_at")[rows]
            happened = (replied_at != NULL) & (replied_at <= self.as_of)
            day = np.where(happened, replied, table.days("closed_at", rows))
            return np.where(self.mask("replied", rows), day, NULL).astype(np.int32)
        if since == "backlog":
            flagged = table.days("backlog_at", rows)
            day = np.where(flagged != NULL, flagged, table.days("registered_at", rows))
            return np.where(self.mask("exists", rows) & table.flags["is_backlog"][rows], day,
                            NULL).astype(np.int32)
        raise KeyError(f"unknown start {since!r}; reply or backlog")

    def waited(self, since: str, rows: np.ndarray) -> np.ndarray:
        """Whole days from :meth:`since_day` to the data date (NULL kept)."""
        start = self.since_day(since, rows)
        return np.where(start == NULL, NULL, self.as_of_day - start).astype(np.int32)


def case_state(table: CaseTable, rules: Rules,
               as_of: datetime | date | None = None) -> CaseState:
    """Return every case's state at ``as_of`` (default: the data's own date), memoised.

    Parameters
    ----------
    table
        The columnar case table (:func:`layers.casedata.case_table`).
    rules
        The limits (:meth:`Rules.of` the store's settings).
    as_of
        The moment to judge at; a date means the end of that day.
    """
    moment = resolve_as_of(table, as_of)
    cached = table.memo("case_state", dict)
    key = (moment, rules)
    if key not in cached:
        cached.clear()  # one data date at a time: each state holds ~4 bytes per case
        cached[key] = _build_state(table, rules, moment)
    return cached[key]


def resolve_as_of(table: CaseTable, as_of: datetime | date | None) -> int:
    """The data date as minutes: ``as_of`` if given, else the table's own (else now)."""
    if as_of is None:
        as_of = table_as_of(table) or datetime.now()
    return minutes_of(as_of)


def deadline_text(days_left: int | float | None) -> str:
    """The one way a deadline reads: 剩 3 天 / 今日到期 / 超期 11 天 ('' when there is none)."""
    if days_left is None or days_left != days_left or days_left == NULL:
        return ""
    days_left = int(days_left)
    if days_left > 0:
        return f"剩 {days_left} 天"
    if days_left == 0:
        return "今日到期"
    return f"超期 {-days_left} 天"


def due_soon_window(rules: Rules, limit_days: int) -> int:
    """Days left at which a limit of ``limit_days`` becomes 临期 (for labels: 60 → 12)."""
    return limit_days - int(rules.soon_after(limit_days))


# --------------------------------------------------------------------------- the rules


def _build_state(table: CaseTable, rules: Rules, as_of: int) -> CaseState:
    as_of_day = as_of // 1440

    def happened(name: str) -> np.ndarray:
        minutes = table.minutes(name)
        return (minutes != NULL) & (minutes <= as_of)

    def day(name: str) -> np.ndarray:
        return table.days(name)

    n = len(table)
    exists = happened("registered_at")
    closed = exists & happened("closed_at")
    decision = happened("accepted_at")
    status_not_accepted = table.is_value("status", ("not_accepted",))
    not_accepted = exists & status_not_accepted & (decision | (table.minutes("accepted_at") == NULL))
    open_ = exists & ~closed & ~not_accepted
    replied_at = happened("replied_at")
    replied = exists & ~not_accepted & (replied_at | closed)
    accepted = exists & ~not_accepted & (decision | replied)

    registered_day = day("registered_at")
    acceptance_due_day = _plus(registered_day, rules.acceptance_days)
    acceptance_left = _minus(acceptance_due_day, as_of_day)
    acceptance_pending = open_ & ~accepted
    acceptance_overdue = acceptance_pending & (acceptance_left < 0)
    acceptance_soon = acceptance_pending & ~acceptance_overdue & (
        as_of_day - registered_day >= rules.soon_after(rules.acceptance_days))

    due_day = day("due_at")
    has_due = due_day != NULL
    handling_left = _minus(due_day, as_of_day)
    accepted_day = day("accepted_at")
    limit = np.where(has_due & (accepted_day != NULL), due_day - accepted_day,
                     np.where(table.flags["extended"], table.deadline[0] + table.deadline[1],
                              table.deadline[0])).astype(np.int32)
    soon_left = limit - rules.soon_after(np.maximum(limit, 1))
    handling_overdue = open_ & has_due & (handling_left < 0)
    handling_soon = open_ & has_due & (handling_left >= 0) & (handling_left <= soon_left)
    reply_pending = open_ & accepted & ~replied_at
    reply_overdue = reply_pending & has_due & (handling_left < 0)
    reply_soon = reply_pending & has_due & (handling_left >= 0) & (handling_left <= soon_left)

    reply_day = np.where(replied_at, day("replied_at"), np.where(closed, day("closed_at"), NULL))
    reply_day = np.where(replied, reply_day, NULL).astype(np.int32)
    followup_pending = replied & ~happened("followed_up_at")
    followup_overdue = followup_pending & (_plus(reply_day, rules.followup_days) < as_of_day)

    rated = exists & ~table.is_missing("rating") & (
        (table.minutes("rated_at") == NULL) | happened("rated_at"))
    rating_due_day = _plus(reply_day, rules.rating_window_days)
    unrated = replied & ~rated
    rating_expired = unrated & ((rating_due_day < as_of_day)
                                | table.is_value("rating_state", (RATING_EXPIRED,)))
    rating_pending = unrated & ~rating_expired
    backlog = exists & table.flags["is_backlog"]

    urgency = np.zeros(n, dtype=np.int8)
    urgency[open_] = 1
    urgency[acceptance_soon | handling_soon] = 2
    urgency[acceptance_overdue | handling_overdue] = 3
    masks = {
        "exists": exists, "closed": closed, "not_accepted": not_accepted, "open": open_,
        "accepted": accepted, "replied": replied, "rated": rated,
        "acceptance_pending": acceptance_pending, "acceptance_overdue": acceptance_overdue,
        "acceptance_due_soon": acceptance_soon, "handling_overdue": handling_overdue,
        "handling_due_soon": handling_soon, "reply_pending": reply_pending,
        "reply_overdue": reply_overdue, "reply_due_soon": reply_soon,
        "followup_pending": followup_pending, "followup_overdue": followup_overdue,
        "rating_pending": rating_pending, "rating_expired": rating_expired,
        "backlog_open": backlog & open_, "backlog_resolved": backlog & closed,
    }
    return CaseState(table=table, rules=rules, as_of=as_of, as_of_day=as_of_day,
                     urgency=urgency, packed={name: np.packbits(masks[name]) for name in MASKS})


def _plus(days: np.ndarray, add: int) -> np.ndarray:
    return np.where(days == NULL, NULL, days + np.int32(add)).astype(np.int32)


def _minus(days: np.ndarray, day: int) -> np.ndarray:
    return np.where(days == NULL, NULL, days - np.int32(day)).astype(np.int32)

