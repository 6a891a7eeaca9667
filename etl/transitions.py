"""Which lifecycle event may follow which (办理流程), and what each one changes on the case.

The one place the rule lives for live status updates (Open311 ``updates.json``). Pure: a stored
case's values in, the column changes out, or a :class:`TransitionError` saying in Chinese (then
English) why not. The order of the steps is the ETL's own (:data:`etl.clean.LIFECYCLE_ORDER`,
信访工作条例 Arts. 22–34): an update whose time lies before the step it follows is refused just as
such a row in an export is.

=========== =========================================== ===========================================
event       allowed when                                 sets
=========== =========================================== ===========================================
受理         登记 only (no decision yet)                   accepted_at, status 受理, 办理期限 (+60 days)
不予受理     登记 only                                     accepted_at (the decision), status 不予受理
交办         open (登记 or 受理), not yet 交办               transferred_at
延期         受理, not yet replied, closed or extended     extended, extended_at, 办理期限 +30 days
答复         受理                                          replied_at, status 答复
办结         受理 or 答复                                  closed_at, status 办结
回访         答复 or 办结, not yet followed up              followed_up_at
评价         答复 or 办结 (a reply exists), not yet rated    rating, rated_at, rating state 已评价
=========== =========================================== ===========================================

A time may not be later than now (plus ``future_tolerance_min``), nor more than a minute before
登记 or before the step the event follows (受理 for 答复/办结/延期, the reply for 回访/评价).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from etl.clean import LIFECYCLE_ORDER, TIMESTAMP_LABELS
from geo.errors import GridgovError
from geo.settings import Settings
from geo.vocab import RATED, RATINGS, STATUS_ZH, UPDATE_EVENTS

TOLERANCE = timedelta(minutes=1)
"""How far before the step it follows an event's time may lie (the ETL's rule)."""
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "accepted": ("registered",),
    "not_accepted": ("registered",),
    "transferred": ("registered", "accepted"),
    "extended": ("accepted",),
    "replied": ("accepted",),
    "closed": ("accepted", "replied"),
    "followed_up": ("replied", "closed"),
    "rated": ("replied", "closed"),
}
"""Event → the 办理状态 a case must have for it."""
COLUMN_OF: dict[str, str] = {
    "accepted": "accepted_at", "not_accepted": "accepted_at", "transferred": "transferred_at",
    "extended": "extended_at", "replied": "replied_at", "closed": "closed_at",
    "followed_up": "followed_up_at", "rated": "rated_at",
}
NEW_STATUS: dict[str, str] = {"accepted": "accepted", "not_accepted": "not_accepted",
                              "replied": "replied", "closed": "closed"}
EVENT_ZH: dict[str, str] = {kind: zh for zh, kind in UPDATE_EVENTS.items()}


class TransitionError(GridgovError):
    """An update that the case's lifecycle does not allow (nothing is written)."""


def parse_event(value: str | None) -> str:
    """Return the event kind of a Chinese name (受理 …) or a kind (accepted …)."""
    text = (value or "").strip()
    if text in UPDATE_EVENTS:
        return UPDATE_EVENTS[text]
    if text in EVENT_ZH:
        return text
    raise TransitionError(f"未知事件 {text[:20]!r}，可用：{'、'.join(UPDATE_EVENTS)} / unknown "
                          f"event; use one of {', '.join(UPDATE_EVENTS.values())}")


def transition(case: Mapping, event: str, at: datetime, *, settings: Settings, now: datetime,
               rating: str | None = None) -> dict:
    """Return the column changes ``event`` at ``at`` makes to ``case`` (see the module table).

    Parameters
    ----------
    case
        The stored case: ``status``, ``extended``, ``rating``, ``due_at`` and every lifecycle
        timestamp column.
    event
        An event kind (:func:`parse_event`).
    rating
        满意 / 基本满意 / 不满意, required for 评价 and refused for any other event.

    Raises
    ------
    TransitionError
        The case's status does not allow the event, the step was already recorded, the time is
        in the future or before the step it follows, or the rating is missing or unknown.
    """
    name = EVENT_ZH[event]
    status = case["status"]
    if status not in ALLOWED_FROM[event]:
        allowed = "或".join(STATUS_ZH[s] for s in ALLOWED_FROM[event])
        now_zh = STATUS_ZH.get(status, status)
        raise TransitionError(f"{name}须在案件处于{allowed}状态时登记，该件现为{now_zh}"
                              f" / {event} needs status {' or '.join(ALLOWED_FROM[event])}; the "
                              f"case is {status}")
    column = COLUMN_OF[event]
    if event != "not_accepted" and case.get(column) is not None:
        raise TransitionError(f"该件已有{TIMESTAMP_LABELS[column]}（{case[column]:%Y-%m-%d %H:%M}），"
                              f"不能重复{name} / the case already has {column}")
    if event == "extended" and case.get("extended"):
        raise TransitionError("该件已延期，不能再次延期（信访工作条例第三十四条）/ already extended")
    _check_rating(event, rating)
    _check_time(case, column, at, settings=settings, now=now, name=name)
    changes: dict = {column: at}
    if event in NEW_STATUS:
        changes["status"] = NEW_STATUS[event]
    if event == "accepted" and case.get("due_at") is None:
        changes["due_at"] = at + timedelta(days=settings.default_deadline_days)
    if event == "extended":
        changes["extended"] = True
        due = case.get("due_at") or (case["accepted_at"]
                                     + timedelta(days=settings.default_deadline_days))
        changes["due_at"] = due + timedelta(days=settings.extension_days)
    if event == "rated":
        changes.update(rating=rating, rating_state=RATED)
    return changes


def _check_rating(event: str, rating: str | None) -> None:
    if event == "rated" and rating not in RATINGS:
        raise TransitionError(f"评价须给出满意度：{'、'.join(RATINGS)} / a rating needs one of "
                              f"{', '.join(RATINGS)}")
    if event != "rated" and rating:
        raise TransitionError("只有评价事件可以带满意度 / only 评价 carries a rating")


def _check_time(case: Mapping, column: str, at: datetime, *, settings: Settings,
                now: datetime, name: str) -> None:
    if at > now + timedelta(minutes=settings.future_tolerance_min):
        raise TransitionError(f"{name}时间 {at:%Y-%m-%d %H:%M} 晚于当前时间 / the time is in the "
                              "future")
    earlier = [e for later, e in LIFECYCLE_ORDER if later == column]
    if column in ("followed_up_at", "rated_at"):
        earlier = ["replied_at" if case.get("replied_at") is not None else "closed_at"]
    if column == "closed_at":
        earlier.append("replied_at")
    for before in earlier:
        stamp = case.get(before)
        if stamp is not None and at < stamp - TOLERANCE:
            raise TransitionError(f"{name}时间 {at:%Y-%m-%d %H:%M} 早于{TIMESTAMP_LABELS[before]} "
                                  f"{stamp:%Y-%m-%d %H:%M} / the time is before {before}")
