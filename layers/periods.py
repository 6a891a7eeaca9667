"""Reporting periods (统计期) read from the data day: presets, partial periods, shifted periods.

Every period here is counted from the data day (the last day the data covers), not from the
calendar on the server: a store exported on 30 June shows 本月 as 1–30 June even when it is
read in August. A period reaching past the data day is partial (截至 that day) and must not be
read or compared as a full one; a comparison period (同比, 环比) is used only when the data
covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PRESETS_ZH = {
    "month": "本月",
    "last_month": "上月",
    "quarter": "本季度",
    "year": "本年",
    "last_12": "近 12 个月",
    "all": "全部",
}
"""Date presets of the filter bar, in the order shown."""


@dataclass(frozen=True)
class Period:
    """A window of days, both ends inclusive; None leaves that side open."""

    start: date | None
    end: date | None


def preset_period(key: str, data_day: date) -> Period:
    """The window a preset names, counted from the data day (ending on it when it is current).

    Raises
    ------
    KeyError
        ``key`` is not one of :data:`PRESETS_ZH`.
    """
    if key not in PRESETS_ZH:
        raise KeyError(f"未知的日期预设 {key!r} / unknown date preset {key!r}")
    month = data_day.replace(day=1)
    if key == "month":
        return Period(month, data_day)
    if key == "last_month":
        end = month - timedelta(days=1)
        return Period(end.replace(day=1), end)
    if key == "quarter":
        return Period(month.replace(month=3 * ((data_day.month - 1) // 3) + 1), data_day)
    if key == "year":
        return Period(data_day.replace(month=1, day=1), data_day)
    if key == "last_12":
        return Period(shift_months(data_day, -12) + timedelta(days=1), data_day)
    return Period(None, None)


def shift_months(day: date, months: int) -> date:
    """The same day ``months`` months away; the month's last day when it has no such day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def partial_end(period: Period, data_day: date | None) -> date | None:
    """The data day when the period runs past it (a partial period, 截至 that day), else None."""
    if data_day is None:
        return None
    if period.end is None or period.end > data_day:
        if period.start is None or period.start <= data_day:
            return data_day
    return None


COMPARISONS_ZH = {"yoy": "同比", "mom": "环比"}
"""同比: the same period a year before; 环比: the period just before, of the same length."""


def comparison_period(period: Period, kind: str, *, first: date | None,
                      last: date | None) -> Period | None:
    """The period a window is compared with, or None when the data does not cover it.

    A window of whole calendar months moves by whole months (环比 of March is February,
    of Q2 is Q1); any other window, a partial month included (1–12 June against 1–12 May),
    moves by as many months when it lies in one month, else by its length in days. 同比
    moves by twelve months. The window is first cut at the data day, so a partial period is
    compared with the same days of the other period, never with a full one. Without dates
    (全部) there is nothing to compare.
    """
    if kind not in COMPARISONS_ZH:
        raise KeyError(f"未知的比较 {kind!r} / unknown comparison {kind!r}")
    if first is None or last is None or period.start is None and period.end is None:
        return None
    start = max(period.start or first, first)
    end = min(period.end or last, last)
    if start > end:
        return None
    if kind == "yoy":
        shifted = Period(shift_months(start, -12), shift_months(end, -12))
    elif start.day == 1 and (end + timedelta(days=1)).day == 1:  # whole months
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        back = shift_months(start, -months)
        shifted = Period(back, start - timedelta(days=1))
    elif (start.year, start.month) == (end.year, end.month):
        shifted = Period(shift_months(start, -1), shift_months(end, -1))
    else:
        length = (end - start).days + 1
        shifted = Period(start - timedelta(days=length), start - timedelta(days=1))
    return shifted if shifted.start >= first else None
