"""同比 and 环比 equal the difference of the metric computed for the shifted period."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from geo.settings import Settings
from geo.store import Store
from layers.compare import kpi_changes, points, ranking_changes
from layers.filters import Filters
from layers.metrics import RATES
from layers.views import unit_row
from tests.layers.conftest import D1, S1, V1N, V1S, V2S, case, insert_cases

MARCH = Filters(date_from=date(2025, 3, 1), date_to=date(2025, 3, 31))


def _two_years() -> list[dict]:
    """About 40 cases a month in three villages from 2023-07 to 2025-06, outcomes varying."""
    rows = []
    start = datetime(2023, 7, 1, 9, 0)
    for i in range(24 * 40):
        registered = start + timedelta(hours=18 * i)
        if registered >= datetime(2025, 6, 30):
            break
        closed = registered + timedelta(days=20 + (i % 7) * 9)
        rows.append(case(
            (V1S, V1N, V2S)[i % 3], registered_at=registered,
            accepted_at=registered + timedelta(days=1 + i % 20),
            closed_at=closed, replied_at=closed,
            rating=("满意", "基本满意", "不满意")[i % 3] if i % 4 else None,
            rated_at=closed + timedelta(days=2) if i % 4 else None,
            is_repeat=i % 11 == 0, registered_level=("镇街", "区", "市")[i % 3]))
    return rows


@pytest.fixture
def store(tiny_engine):
    insert_cases(tiny_engine, _two_years())
    return Store(tiny_engine, Settings())


def test_yoy_and_mom_equal_the_metric_of_the_shifted_period(store):
    first, last = date(2023, 7, 1), date(2025, 6, 29)
    changes = kpi_changes(store, D1, filters=MARCH, first=first, last=last)
    now = unit_row(store, D1, filters=MARCH)
    then = {"yoy": unit_row(store, D1, filters=Filters(date_from=date(2024, 3, 1),
                                                        date_to=date(2024, 3, 31))),
            "mom": unit_row(store, D1, filters=Filters(date_from=date(2025, 2, 1),
                                                        date_to=date(2025, 2, 28)))}
    shown = 0
    for rate in RATES:
        for kind in ("yoy", "mom"):
            expected = (round(100 * (now[rate] - then[kind][rate]), 1)
                        if now[rate + "_rankable"] and then[kind][rate + "_rankable"] else None)
            assert changes[rate][kind] == expected, (rate, kind)
            shown += expected is not None
    assert shown >= 6  # most rates are compared both ways


def test_no_comparison_where_the_data_does_not_reach(store):
    changes = kpi_changes(store, D1, filters=MARCH, first=date(2024, 7, 1),
                          last=date(2025, 6, 29))
    assert "yoy" not in changes["on_time_completion"]
    assert changes["on_time_completion"]["mom"] is not None


def test_ranking_rows_carry_their_own_changes(store):
    frame = ranking_changes(store, S1, rate="on_time_completion", filters=MARCH,
                            first=date(2023, 7, 1), last=date(2025, 6, 29))
    v = frame.set_index("code")
    now = unit_row(store, V1S, filters=MARCH)
    before = unit_row(store, V1S, filters=Filters(date_from=date(2025, 2, 1),
                                                   date_to=date(2025, 2, 28)))
    assert v.loc[V1S, "mom"] == points(now, before, "on_time_completion")


def test_points_need_enough_cases_on_both_sides():
    assert points({"r": 0.9, "r_rankable": True}, {"r": 0.85, "r_rankable": True}, "r") == 5.0
    assert points({"r": 0.9, "r_rankable": True}, {"r": 0.5, "r_rankable": False}, "r") is None
