"""The trend and the KPI cards are honest about what a period holds."""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboard.components import rate_value
from dashboard.figures import trend_figure


def test_the_trend_marks_a_partial_month_and_hides_rates_of_too_few_cases():
    trend = pd.DataFrame({
        "month": ["2025-04", "2025-05", "2025-06"],
        "month_end": [date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 12)],
        "partial": [False, False, True],
        "cases": [17_000, 25, 4_000],
        "on_time_completion": [0.95, 1.0, 0.9],
        "on_time_completion_num": [16_150, 3, 900],
        "on_time_completion_den": [17_000, 3, 1_000],
        "on_time_completion_rankable": [True, False, True],
    })
    figure = trend_figure(trend, rate="on_time_completion")
    bars, line = figure["data"]
    assert bars["x"][-1] == "2025-06（截至 06-12）" and bars["x"][0] == "2025-04"
    assert bars["marker"]["color"][-1] != bars["marker"]["color"][0]  # the cut month is pale
    assert line["y"] == [95.0, None, 90.0]  # 3 cases: no 100 % drawn
    assert "16,150 / 17,000" in line["text"][0] and "样本不足" in line["text"][1]


def test_a_kpi_card_with_too_few_cases_says_so():
    assert rate_value({"satisfaction": 1.0, "satisfaction_den": 2,
                       "satisfaction_rankable": False}, "satisfaction") == "样本不足"
    assert rate_value({"satisfaction": 0.9234, "satisfaction_den": 200,
                       "satisfaction_rankable": True}, "satisfaction") == "92.3%"
    assert rate_value({"satisfaction": None, "satisfaction_den": 0,
                       "satisfaction_rankable": False}, "satisfaction") == "—"
