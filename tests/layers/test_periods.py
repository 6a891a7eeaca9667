"""Reporting periods counted from the data day: presets, month shifts, partial periods."""

from __future__ import annotations

from datetime import date

import pytest

from layers.periods import PRESETS_ZH, Period, partial_end, preset_period, shift_months

DAY = date(2025, 6, 30)


@pytest.mark.parametrize(("key", "start", "end"), [
    ("month", date(2025, 6, 1), DAY),
    ("last_month", date(2025, 5, 1), date(2025, 5, 31)),
    ("quarter", date(2025, 4, 1), DAY),
    ("year", date(2025, 1, 1), DAY),
    ("last_12", date(2024, 7, 1), DAY),
    ("all", None, None),
])
def test_presets_count_from_the_data_day(key, start, end):
    assert preset_period(key, DAY) == Period(start, end)


def test_every_preset_has_a_label_and_an_unknown_one_is_refused():
    assert list(PRESETS_ZH.values()) == ["本月", "上月", "本季度", "本年", "近 12 个月", "全部"]
    with pytest.raises(KeyError):
        preset_period("decade", DAY)


def test_january_s_last_month_is_december():
    assert preset_period("last_month", date(2025, 1, 9)) == Period(date(2024, 12, 1),
                                                                  date(2024, 12, 31))


def test_month_shifts_keep_the_day_or_take_the_month_s_last():
    assert shift_months(date(2025, 3, 31), -1) == date(2025, 2, 28)
    assert shift_months(date(2024, 2, 29), -12) == date(2023, 2, 28)
    assert shift_months(date(2025, 1, 15), -1) == date(2024, 12, 15)
    assert shift_months(date(2025, 12, 15), 1) == date(2026, 1, 15)


def test_a_period_reaching_past_the_data_day_is_partial():
    assert partial_end(Period(date(2025, 6, 1), date(2025, 6, 30)), date(2025, 6, 12)) \
        == date(2025, 6, 12)
    assert partial_end(Period(date(2025, 5, 1), date(2025, 5, 31)), date(2025, 6, 12)) is None
    assert partial_end(Period(date(2025, 7, 1), None), date(2025, 6, 12)) is None
    assert partial_end(Period(None, None), None) is None




@pytest.mark.parametrize(("start", "end", "kind", "expected"), [
    (date(2025, 3, 1), date(2025, 3, 31), "mom", (date(2025, 2, 1), date(2025, 2, 28))),
    (date(2025, 4, 1), date(2025, 6, 30), "mom", (date(2025, 1, 1), date(2025, 3, 31))),
    (date(2025, 6, 1), date(2025, 6, 30), "yoy", (date(2024, 6, 1), date(2024, 6, 30))),
    (date(2025, 3, 1), date(2025, 3, 31), "yoy", (date(2024, 3, 1), date(2024, 3, 31))),
    (date(2025, 5, 10), date(2025, 5, 20), "mom", (date(2025, 4, 10), date(2025, 4, 20))),
    (date(2025, 5, 10), date(2025, 6, 9), "mom", (date(2025, 4, 9), date(2025, 5, 9))),
    # a partial month is compared with the same days, not with a full month
    (date(2025, 6, 1), date(2025, 6, 30), "partial", (date(2025, 5, 1), date(2025, 5, 12))),
])
def test_comparison_periods(start, end, kind, expected):
    from layers.periods import comparison_period

    last = date(2025, 6, 12) if kind == "partial" else date(2025, 6, 30)
    got = comparison_period(Period(start, end), "mom" if kind == "partial" else kind,
                            first=date(2023, 1, 1), last=last)
    assert (got.start, got.end) == expected


def test_no_comparison_without_data_or_dates():
    from layers.periods import comparison_period

    june = Period(date(2025, 6, 1), date(2025, 6, 30))
    assert comparison_period(june, "yoy", first=date(2024, 7, 1), last=DAY) is None
    assert comparison_period(Period(None, None), "mom", first=date(2024, 7, 1), last=DAY) is None
    assert comparison_period(june, "mom", first=date(2024, 7, 1), last=DAY) == Period(
        date(2025, 5, 1), date(2025, 5, 31))
