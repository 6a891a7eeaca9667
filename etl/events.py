"""Lifecycle events (流转记录) a later export adds to a case the store already holds.

A case's own timestamps (``geo.vocab.LIFECYCLE_COLUMNS``: 登记, 受理, 交办/转送, 延期, 答复,
办结, 回访, 评价, 复查, 复核) are its timeline; the dashboard derives the timeline from them
and merges the stored events. So a *new* case gets one ``created`` event only (written in
bulk by :mod:`etl.load`), and events are stored for what a *later* export changes:

* a step that was missing and now has a time → an event of that kind (``accepted`` …; a
  decision in ``accepted_at`` of a case now 不予受理 is ``not_accepted``), ``at`` = the time
  in the export (when it happened, not when it was loaded);
* a step whose time changed value → ``corrected``, detail ``受理时间 old → new``, at the new
  time; a time that disappeared → ``corrected`` (``old → 空``) at the load time;
* a status that changed without any time telling when (an export that only says 办结) →
  the status's event at the load time, and likewise a rating given without 评价时间
  (``rated``); a rating that changed under the same 评价时间 → ``corrected``.

Every event carries the new status, ``recorded_at`` = load time, ``source`` = import.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from geo.vocab import LIFECYCLE_COLUMNS

TRACKED_COLUMNS: tuple[str, ...] = (*LIFECYCLE_COLUMNS.values(), "status", "rating",
                                    "extended")
"""The stored columns whose old values an update is compared with."""

COLUMN_ZH: dict[str, str] = {
    "registered_at": "登记时间", "accepted_at": "受理时间", "transferred_at": "转送/交办时间",
    "extended_at": "延期时间", "replied_at": "答复时间", "closed_at": "办结时间",
    "followed_up_at": "回访时间", "rated_at": "评价时间", "reviewed_at": "复查时间",
    "rechecked_at": "复核时间", "rating": "满意度",
}
_STATUS_EVENT = {"accepted": "accepted", "replied": "replied", "closed": "closed",
                 "not_accepted": "not_accepted", "registered": "updated"}
EVENT_COLUMNS = ("case_id", "at", "event", "status", "detail")


def lifecycle_events(old: pd.DataFrame, new: pd.DataFrame, *, now: datetime) -> pd.DataFrame:
    """Return the events an update from ``old`` to ``new`` adds (see the module docstring).

    Parameters
    ----------
    old, new
        The stored and the incoming values of the same cases, :data:`TRACKED_COLUMNS`
        plus ``case_id``, aligned row by row.
    now
        The load time (for changes no timestamp dates).

    Returns
    -------
    DataFrame
        :data:`EVENT_COLUMNS`, ordered by case then time.
    """
    if new.empty:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    case_id = new["case_id"].to_numpy(dtype=object)
    status = new["status"].to_numpy(dtype=object)
    not_accepted = status == "not_accepted"
    stamp = np.datetime64(now.replace(microsecond=0), "us")
    parts: list[pd.DataFrame] = []
    dated_status = np.zeros(len(new), dtype=bool)  # the new status's step got an event

    def add(mask: np.ndarray, at: np.ndarray, event: np.ndarray | str, detail) -> None:  # noqa: ANN001
        if mask.any():
            parts.append(pd.DataFrame({
                "case_id": case_id[mask], "at": at[mask],
                "event": event[mask] if isinstance(event, np.ndarray) else event,
                "status": status[mask],
                "detail": detail[mask] if isinstance(detail, np.ndarray) else detail}))

    for kind, column in LIFECYCLE_COLUMNS.items():
        before = _times(old[column])
        after = _times(new[column])
        had, has = ~np.isnat(before), ~np.isnat(after)
        appeared = ~had & has
        events = np.full(len(new), kind, dtype=object)
        if kind == "accepted":
            events[not_accepted] = "not_accepted"
        add(appeared, after, events, None)
        moved = had & has & (before != after)
        label = COLUMN_ZH[column]
        add(moved, after, "corrected", _changes(label, before, after, moved))
        gone = had & ~has
        add(gone, np.full(len(new), stamp), "corrected", _changes(label, before, after, gone))
        for value, step in (("accepted", "accepted"), ("not_accepted", "accepted"),
                            ("replied", "replied"), ("closed", "closed")):
            if step == kind:
                dated_status |= (status == value) & has
    old_status = old["status"].to_numpy(dtype=object)
    undated = (old_status != status) & ~dated_status
    kinds = np.array([_STATUS_EVENT.get(s, "updated") for s in status], dtype=object)
    add(undated, np.full(len(new), stamp), kinds,
        np.array([f"办理状态 {o} → {s}" for o, s in zip(old_status, status)], dtype=object))
    extended = _flags(new["extended"]) & ~_flags(old["extended"]) & np.isnat(_times(new["extended_at"]))
    add(extended, np.full(len(new), stamp), "extended", None)
    rated_same_time = _times(old["rated_at"]) == _times(new["rated_at"])
    old_rating, new_rating = _texts(old["rating"]), _texts(new["rating"])
    undated_rating = (pd.isna(old_rating) & pd.notna(new_rating)
                      & np.isnat(_times(new["rated_at"])))
    add(undated_rating, np.full(len(new), stamp), "rated", None)
    regraded = (old_rating != new_rating) & rated_same_time & ~np.isnat(_times(new["rated_at"]))
    add(regraded, _times(new["rated_at"]), "corrected",
        np.array([f"满意度 {o or '空'} → {n or '空'}" for o, n in zip(old_rating, new_rating)],
                 dtype=object))
    if not parts:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = pd.concat(parts, ignore_index=True)
    return events.sort_values(["case_id", "at"], kind="stable").reset_index(drop=True)


def _times(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, errors="coerce").to_numpy(dtype="datetime64[us]")


def _flags(values: pd.Series) -> np.ndarray:
    return values.fillna(False).astype(bool).to_numpy()


def _texts(values: pd.Series) -> np.ndarray:
    out = values.astype(object).to_numpy(dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def _changes(label: str, before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> np.ndarray:
    detail = np.full(len(before), None, dtype=object)
    for i in np.flatnonzero(mask):
        detail[i] = f"{label} {_show(before[i])} → {_show(after[i])}"
    return detail


def _show(value: np.datetime64) -> str:
    if np.isnat(value):
        return "空"
    return str(pd.Timestamp(value).floor("s"))
