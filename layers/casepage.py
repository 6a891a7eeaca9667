"""One case as its page shows it (案件详情): content, place, deadlines with their state, timeline.

The deadlines are read off :mod:`layers.rules` at the case's row of the columnar table, so the
page says exactly what every list and count says about the same case on the same data date.
The timeline merges the lifecycle the case row records (登记, 受理, 交办/转送, 延期, 答复, 办结,
回访, 评价, 复查, 复核: each timestamp the latest export gave, :data:`geo.vocab.LIFECYCLE_COLUMNS`)
with the events stored as they were learnt (a later export changing a case, a correction by an
office, a re-attachment after a boundary change); an event in both appears once.

Personal data stays masked (name 张**, phone 138****5678); the ID number is never shown, and
phone or ID numbers typed into 地址 or 信访内容 are masked too (:func:`geo.privacy.mask_text`;
the store keeps the original).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from geo import schema
from geo.errors import CodeError
from geo.privacy import mask_name, mask_phone, mask_text
from geo.store import Store
from geo.vocab import ATTACH_METHODS, EVENT_KINDS, EVENT_ZH, LIFECYCLE_COLUMNS, STATUS_ZH
from layers.casedata import NULL, case_table, day_of_number, minutes_to_datetime
from layers.rules import URGENCY, URGENCY_ZH, CaseState, Rules, case_state, deadline_text
from layers.units import unit_path

SOURCE_ZH = {"import": "数据导入", "api": "接口", "user": "人工", "system": "系统"}


@dataclass(frozen=True)
class Deadline:
    """One limit of a case: what it is, when it falls due, and where the case stands."""

    label: str
    due: date | None
    state: str
    text: str
    urgency: str
    """overdue, soon, ok or done (for the colour)."""


@dataclass(frozen=True)
class TimelineEvent:
    """One step of a case's history."""

    at: datetime
    kind: str
    label: str
    detail: str = ""
    source: str = ""


@dataclass
class CaseDetail:
    """Everything the case page shows about one case."""

    case_id: str
    status_zh: str
    urgency: str
    urgency_zh: str
    fields: dict[str, str]
    place: dict[str, str]
    deadlines: list[Deadline]
    timeline: list[TimelineEvent]
    description: str
    unit_codes: dict[str, str | None] = field(default_factory=dict)
    """village/street/district code of the case (for scope checks)."""
    as_of: datetime | None = None


_ROW_COLUMNS = (
    "case_id", "status", "category", "purpose", "channel", "registered_level", "handling_unit",
    "backlog_leader", "is_backlog", "is_repeat", "repeat_of", "extended", "people_count",
    "rating", "rating_state", "address", "village_code", "street_code", "district_code",
    "grid_code", "attach_method", "attach_distance_m", "petitioner_name", "petitioner_phone",
    "description", *LIFECYCLE_COLUMNS.values(), "due_at",
)


def case_detail(store: Store, case_id: str, *,
                as_of: datetime | date | None = None) -> CaseDetail | None:
    """Return the page of case ``case_id``, or None when no case has that number."""
    row = _read_row(store, case_id)
    if row is None:
        return None
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    position = table.position_of(case_id)
    urgency = URGENCY[int(state.urgency[position])] if position >= 0 else "none"
    status = str(row["status"] or "")
    return CaseDetail(
        case_id=str(row["case_id"]),
        status_zh=STATUS_ZH.get(status, status),
        urgency=urgency,
        urgency_zh=URGENCY_ZH[urgency],
        fields=_fields(row),
        place=_place(store, row),
        deadlines=_deadlines(state, position, store.settings.rating_window_days) if position >= 0
        else [],
        timeline=_timeline(store, row),
        description=mask_text(_text(row["description"])),
        unit_codes={level: _text(row[f"{level}_code"]) or None
                    for level in ("village", "street", "district")},
        as_of=minutes_to_datetime(state.as_of),
    )


# --------------------------------------------------------------------------- parts


def _read_row(store: Store, case_id: str) -> dict | None:
    c = schema.cases.c
    query = sa.select(*[c[name] for name in _ROW_COLUMNS]).where(c.case_id == str(case_id))
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def _fields(row: dict) -> dict[str, str]:
    fields = {
        "信访件编号": _text(row["case_id"]),
        "办理状态": STATUS_ZH.get(row["status"], _text(row["status"])),
        "内容分类": _text(row["category"]),
        "信访目的": _text(row["purpose"]),
        "信访渠道": _text(row["channel"]),
        "登记机构级别": _text(row["registered_level"]),
        "承办单位": _text(row["handling_unit"]),
        "积案": "是" if row["is_backlog"] else "否",
        "包案领导": _text(row["backlog_leader"]) or ("未明确" if row["is_backlog"] else ""),
        "重复信访": ("是（原件 " + _text(row["repeat_of"]) + "）" if row["repeat_of"] else "是")
        if row["is_repeat"] else "否",
        "涉及人数": _text(row["people_count"]),
        "延期": "是" if row["extended"] else "否",
        "评价": _text(row["rating"]),
        "信访人": _text(mask_name(row["petitioner_name"])),
        "联系电话": _text(mask_phone(row["petitioner_phone"])),
    }
    return {label: value for label, value in fields.items() if value != ""}


def _place(store: Store, row: dict) -> dict[str, str]:
    finest = next((row[f"{level}_code"] for level in ("grid", "village", "street", "district")
                   if row[f"{level}_code"]), None)
    units = "未落格"
    if finest:
        try:
            units = " › ".join(u.name for u in unit_path(store, str(finest))[1:])
        except CodeError:  # a code no longer in the grid: show it as given
            units = str(finest)
    method = _text(row["attach_method"])
    how = ATTACH_METHODS.get(method, method)
    distance = row["attach_distance_m"]
    if distance is not None and not pd.isna(distance) and float(distance) > 0:
        how += f"（距网格边界 {float(distance):.0f} 米）"
    return {"地址": mask_text(_text(row["address"])), "所属网格": units, "落格方式": how}


def _deadlines(state: CaseState, i: int, rating_window: int) -> list[Deadline]:
    row = np.array([i])

    def on(name: str) -> bool:  # one bit of a mask (see CaseState.mask)
        return bool(state.mask(name, row)[0])

    def due(deadline: str) -> date | None:
        value = int(state.due_day(deadline, row)[0])
        return None if value == NULL else day_of_number(value)

    def left(deadline: str) -> int:
        return int(state.days_left(deadline, row)[0])

    def colour(days: int, soon: bool) -> str:
        return "overdue" if days < 0 else "soon" if soon else "ok"

    out = []
    # 受理期限: 登记 + 15 days
    if on("acceptance_pending"):
        days = left("acceptance")
        out.append(Deadline("受理期限", due("acceptance"), "超期未受理" if days < 0 else "待受理",
                            deadline_text(days), colour(days, on("acceptance_due_soon"))))
    elif on("not_accepted"):
        out.append(Deadline("受理期限", None, "不予受理", "", "done"))
    elif on("accepted"):
        out.append(Deadline("受理期限", None, "已受理", "", "done"))
    # 办理期限 (extension aware); the reply is due with it
    handling = due("handling")
    if on("open") and handling is not None:
        days = left("handling")
        label = "超期未办结" if days < 0 else "临期" if on("handling_due_soon") else "办理中"
        out.append(Deadline("办理期限", handling, label, deadline_text(days),
                            colour(days, on("handling_due_soon"))))
        if on("reply_pending"):
            out.append(Deadline("答复期限", handling, "待答复", deadline_text(days),
                                colour(days, on("reply_due_soon"))))
    elif on("closed") and handling is not None:
        out.append(Deadline("办理期限", handling, "已办结", "", "done"))
    # 回访 and 评价 after the reply
    if on("followup_pending"):
        days = left("followup")
        out.append(Deadline("回访期限", due("followup"), "超期未回访" if days < 0 else "待回访",
                            deadline_text(days), "overdue" if days < 0 else "ok"))
    elif on("replied"):
        out.append(Deadline("回访期限", None, "已回访", "", "done"))
    if on("rating_pending"):
        out.append(Deadline("评价期限", due("rating"), "待评价", deadline_text(left("rating")),
                            "ok"))
    elif on("rating_expired"):
        out.append(Deadline("评价期限", None, "超期未评价",
                            f"答复后 {rating_window} 天内未评价", "overdue"))
    elif on("rated"):
        out.append(Deadline("评价期限", None, "已评价", "", "done"))
    return out


def _timeline(store: Store, row: dict) -> list[TimelineEvent]:
    not_accepted = row["status"] == "not_accepted"
    derived: list[TimelineEvent] = []
    for kind, column in LIFECYCLE_COLUMNS.items():
        value = row[column]
        if value is None or pd.isna(value):
            continue
        shown = "not_accepted" if kind == "accepted" and not_accepted else kind
        detail = ""
        if kind == "rated" and row["rating"]:
            detail = _text(row["rating"])
        elif kind == "extended":
            detail = "办理期限延长（条例第三十四条）"
        derived.append(TimelineEvent(pd.Timestamp(value).to_pydatetime(), shown,
                                     EVENT_ZH[shown], detail))
    seen = {(e.kind, e.at) for e in derived}
    stored = []
    for event in _stored_events(store, row["case_id"]):
        if event.kind == "created" or (event.kind, event.at) in seen:
            continue
        stored.append(event)
    order = {kind: i for i, kind in enumerate(EVENT_KINDS)}
    return sorted(derived + stored, key=lambda e: (e.at, order.get(e.kind, len(order))))


def _stored_events(store: Store, case_id: str) -> list[TimelineEvent]:
    e = schema.case_event.c
    query = sa.select(e.at, e.event, e.detail, e.source, e.actor).where(
        e.case_id == case_id).order_by(e.at, e.id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    events = []
    for at, kind, detail, source, actor in rows:
        label = EVENT_ZH.get(kind, "状态变更" if kind == "status" else _text(kind))
        who = SOURCE_ZH.get(source or "", "")
        if actor:
            who = f"{who} · {actor}" if who else _text(actor)
        events.append(TimelineEvent(pd.Timestamp(at).to_pydatetime(), _text(kind), label,
                                    mask_text(_text(detail)), who))
    return events


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)
