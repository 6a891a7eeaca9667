"""Property: for any case set, roll-ups agree across levels.

Counts and every numerator/denominator of a parent equal the sums over its children (plus the
cases known only at the parent's level), the city row equals units + unassigned at every level
and is the same at every level, and every rate is its numerator over its denominator.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import schema
from geo.settings import Settings
from geo.store import Store
from layers.filters import Filters
from layers.metrics import COUNTS, RATES, compute_metrics
from tests.layers.conftest import CITY, S1, VILLAGES, case, insert_cases

ADDITIVE = list(COUNTS) + [
    f"{rate}_{part}" for rate in RATES for part in ("num", "den")
]
START = datetime(2025, 1, 1, 8, 0)


@st.composite
def case_rows(draw):
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        place = draw(st.sampled_from([*VILLAGES, None, "street-only"]))
        registered = START + timedelta(days=draw(st.integers(0, 150)), hours=draw(
            st.integers(0, 10)))
        fields = {
            "registered_at": registered,
            "is_repeat": draw(st.booleans()),
            "is_backlog": draw(st.booleans()),
            "extended": draw(st.booleans()),
            "category": draw(st.sampled_from(["城乡建设", "劳动社保"])),
            "registered_level": draw(st.sampled_from([None, "市", "区", "镇街", "村居"])),
        }
        if draw(st.booleans()):
            accepted = registered + timedelta(days=draw(st.integers(0, 25)))
            fields["accepted_at"] = accepted
            if draw(st.booleans()):
                closed = accepted + timedelta(days=draw(st.integers(0, 100)))
                fields["closed_at"] = fields["replied_at"] = closed
                rating = draw(st.sampled_from([None, "满意", "基本满意", "不满意"]))
                if rating:
                    fields["rating"] = rating
                    fields["rated_at"] = closed + timedelta(days=draw(st.integers(0, 10)))
        if place == "street-only":
            row = case(None, street_code=S1, district_code=S1[:6] + "000000",
                       attach_method="code", **fields)
        else:
            row = case(place, **fields)
        rows.append(row)
    return rows


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=case_rows(), with_window=st.booleans(), category=st.booleans())
def test_rollups_agree(tiny_engine, rows, with_window, category):
    with tiny_engine.begin() as conn:
        conn.execute(sa.delete(schema.cases))
    insert_cases(tiny_engine, rows)
    filters = Filters(
        date_from=date(2025, 2, 1) if with_window else None,
        date_to=date(2025, 4, 30) if with_window else None,
        category=("城乡建设",) if category else (),
    )
    store = Store(tiny_engine, Settings())  # one store: the case table is read once, not 4×
    frames = {
        level: compute_metrics(store, level=level, filters=filters,
                               as_of=date(2025, 8, 1)).set_index("code")
        for level in ("village", "street", "district", "city")
    }
    reference_city = frames["district"].loc[CITY]
    for level, frame in frames.items():
        units = frame[frame["row_type"] == "unit"]
        unassigned = frame.loc["unassigned"]
        city = frame[frame["row_type"] == "city"].iloc[0]
        for column in ADDITIVE:
            assert units[column].sum() + unassigned[column] == city[column], (level, column)
            assert city[column] == reference_city[column], (level, column)
        for column in ("days_to_close_median", "days_to_close_p90"):
            np.testing.assert_allclose(city[column], reference_city[column])
        for rate in RATES:
            den = frame[f"{rate}_den"].to_numpy()
            expected = np.where(den > 0, frame[f"{rate}_num"] / np.maximum(den, 1), np.nan)
            np.testing.assert_allclose(frame[rate].to_numpy(float), expected)
    # cases known only at street level (street-only, all in S1) are unassigned among villages
    street_only = frames["village"].loc["unassigned", ADDITIVE] - frames["street"].loc[
        "unassigned", ADDITIVE]
    for child_level, parent_level in (("village", "street"), ("street", "district"),
                                      ("district", "city")):
        child, parent = frames[child_level], frames[parent_level]
        sums = child[child["row_type"] == "unit"].groupby("parent_code")[ADDITIVE].sum()
        for code, row in parent[parent["row_type"] == "unit"].iterrows():
            expected = sums.loc[code] if code in sums.index else 0
            if child_level == "village" and code == S1:
                expected = expected + street_only
            assert (row[ADDITIVE] == expected).all(), (parent_level, code)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=case_rows(), with_window=st.booleans(), category=st.booleans())
def test_days_to_close_is_the_same_whichever_way_the_closed_cases_are_sorted(
        tiny_engine, rows, with_window, category, monkeypatch):
    """A narrow filter sorts its own closed cases; a wide one masks the kept days order.

    On SQLite only: both ways sort the same in-memory case table, whatever store it was read
    from (test_rollups_agree above reads it from both backends).
    """
    from layers import metrics

    with tiny_engine.begin() as conn:
        conn.execute(sa.delete(schema.cases))
    insert_cases(tiny_engine, rows)
    filters = Filters(date_from=date(2025, 2, 1) if with_window else None,
                      date_to=date(2025, 4, 30) if with_window else None,
                      category=("城乡建设",) if category else ())
    columns = ["days_to_close_median", "days_to_close_p90"]
    frames = []
    for share in (0, 10**9):  # 0: every selection sorted on its own; 10**9: none
        monkeypatch.setattr(metrics, "_DIRECT_SORT_SHARE", share)
        store = Store(tiny_engine, Settings())  # a fresh copy: nothing kept from the other way
        frames.append(compute_metrics(store, level="village", filters=filters,
                                      as_of=date(2025, 8, 1)).set_index("code")[columns])
    np.testing.assert_array_equal(frames[0].to_numpy(float), frames[1].to_numpy(float))
