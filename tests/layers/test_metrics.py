"""Every metric on small hand-built case sets, with the right answers written out.

The grid is tests/grids.py (2 districts, 4 streets, 8 villages). Cases are inserted directly into
the store. Dates are 2025; the data date (as of) is fixed at 2025-06-30 23:59:59 unless a test
says otherwise, so "overdue" and "rating window expired" are unambiguous.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest

from geo.errors import GridgovError
from geo.settings import Settings
from geo.store import Store
from layers.casedata import case_table, data_as_of, data_range, minutes_of
from layers.filters import Filters
from layers.metrics import RATES, compute_metrics
from tests.layers.conftest import (
    CITY,
    D1,
    S1,
    V1N,
    V1S,
    V2S,
    V3S,
    VILLAGES,
    case,
    insert_cases,
)

AS_OF = date(2025, 6, 30)
SETTINGS = Settings()


def _row(frame, code):
    rows = frame[frame["code"] == code]
    assert len(rows) == 1, code
    return rows.iloc[0]


def _six_cases() -> list[dict]:
    """Six cases in village V1S covering every rule (see each comment for its role)."""
    a = case(  # accepted on day 9 (timely); due = Jan 10 + 60 = Mar 11; closed ON the due date
        V1S, accepted_at=datetime(2025, 1, 10), closed_at=datetime(2025, 3, 11, 15, 0),
        replied_at=datetime(2025, 3, 1), rating="满意", rated_at=datetime(2025, 3, 5),
        registered_level="区", category="城乡建设", purpose="求决", channel="网上",
    )
    b = case(  # accepted late (day 19); extended: due Jan 20 + 90 = Apr 20; closed Apr 10
        V1S, accepted_at=datetime(2025, 1, 20), extended=True,
        closed_at=datetime(2025, 4, 10, 9, 0), replied_at=datetime(2025, 4, 10, 9, 0),
        rating="不满意", rated_at=datetime(2025, 4, 12), registered_level="市",
        category="城乡建设", purpose="求决", channel="来访",
    )
    c = case(  # never accepted: 超期未受理 after Jan 16; open but without a due date
        V1S, registered_level="省", category="劳动社保", purpose="求决", channel="来信",
    )
    d = case(  # repeat petition of a (重件): due Jun 1 → overdue open on Jun 30
        V1S, registered_at=datetime(2025, 4, 1, 9, 0), accepted_at=datetime(2025, 4, 2),
        due_at=datetime(2025, 6, 1), is_repeat=True, repeat_of=a["case_id"],
        registered_level="镇街", category="城乡建设", purpose="求决", channel="网上",
    )
    e = case(  # closed and replied Feb 1, never rated: 超期未评价 after Mar 3
        V1S, accepted_at=datetime(2025, 1, 5), closed_at=datetime(2025, 2, 1, 9, 0),
        replied_at=datetime(2025, 2, 1, 9, 0), category="劳动社保", purpose="申诉", channel="网上",
    )
    f = case(  # 积案, closed late (due Mar 3, closed Jun 1), rated 基本满意
        V1S, accepted_at=datetime(2025, 1, 2), closed_at=datetime(2025, 6, 1, 9, 0),
        replied_at=datetime(2025, 6, 1, 9, 0), rating="基本满意", rated_at=datetime(2025, 6, 2),
        is_backlog=True, registered_level="镇街", category="城乡建设", purpose="求决",
        channel="电话",
    )
    return [a, b, c, d, e, f]


@pytest.fixture
def six(tiny_engine):
    insert_cases(tiny_engine, _six_cases())
    return tiny_engine


def test_no_cases_gives_zero_counts_and_no_rates(tiny_engine):
    frame = compute_metrics(Store(tiny_engine, SETTINGS), level="village", as_of=AS_OF)
    assert list(frame["row_type"]) == ["unit"] * 8 + ["city", "unassigned"]
    assert list(frame["code"][:8]) == sorted(VILLAGES)
    assert (frame["cases"] == 0).all() and (frame["open_cases"] == 0).all()
    for rate in RATES:
        assert frame[rate].isna().all(), rate
        assert (frame[rate + "_den"] == 0).all()
        assert not frame[rate + "_rankable"].any()
    assert frame["days_to_close_median"].isna().all()
    store = Store(tiny_engine, SETTINGS)
    assert data_as_of(store) is None and data_range(store) is None


def test_every_metric_on_six_cases(six):
    frame = compute_metrics(Store(six, SETTINGS), level="village", as_of=AS_OF)
    v = _row(frame, V1S)
    assert (v["cases"], v["open_cases"], v["overdue_open"]) == (6, 2, 1)
    # 及时受理: cohort a b c e f (d is a 重件); timely a e f; b late; c past the limit unaccepted
    assert (v["timely_acceptance_num"], v["timely_acceptance_den"]) == (3, 5)
    # 按期办结: a on its due date ✓, b within the extension ✓, e ✓, f late ✗; c has no due date
    assert (v["on_time_completion_num"], v["on_time_completion_den"]) == (3, 4)
    assert v["on_time_completion"] == pytest.approx(0.75)
    # 一次性化解: closed 初件 a b e f; a was repeated, b 不满意, e unrated → only f
    assert (v["first_time_resolution_num"], v["first_time_resolution_den"]) == (1, 4)
    # 满意率: a 满意, f 基本满意 over a b f
    assert (v["satisfaction_num"], v["satisfaction_den"]) == (2, 3)
    # 参评率: replied a b e f; rated a b f; e expired (Feb 1 + 30 days < Jun 30)
    assert (v["participation_num"], v["participation_den"]) == (3, 4)
    assert (v["repeat_num"], v["repeat_den"]) == (1, 6)
    assert v["backlog_cases"] == 1
    assert (v["backlog_clearance_num"], v["backlog_clearance_den"]) == (1, 1)
    # 属地化解: 区 a, 镇街 d f over the five with a registering level (e has none)
    assert (v["local_resolution_num"], v["local_resolution_den"]) == (3, 5)
    # days to close: e 31, a 69.25 (closed 15:00), b 99, f 151
    assert v["days_to_close_median"] == pytest.approx((69.25 + 99) / 2)
    assert v["days_to_close_p90"] == pytest.approx(99 + 0.7 * (151 - 99))
    # density: the village is 0.01° × 0.01° (≈1.1345 km²) with 2,500 residents (estimated)
    assert v["cases_per_10k"] == pytest.approx(6 / 2500 * 10_000)
    assert v["cases_per_km2"] == pytest.approx(6 / v["area_km2"])
    assert 1.12 < v["area_km2"] < 1.15 and bool(v["population_estimated"])
    other = _row(frame, V1N)
    assert other["cases"] == 0 and math.isnan(other["on_time_completion"])


def test_rankable_follows_the_threshold(six):
    frame = compute_metrics(Store(six, Settings(min_cases_for_rate=4)), level="village", as_of=AS_OF)
    v = _row(frame, V1S)
    assert v["timely_acceptance_rankable"] and v["on_time_completion_rankable"]
    assert not v["satisfaction_rankable"]  # 3 ratings < 4
    assert not compute_metrics(Store(six, SETTINGS), level="village", as_of=AS_OF)[
        "on_time_completion_rankable"].any()


def test_extension_is_what_makes_b_on_time(tiny_engine):
    b = case(V1S, accepted_at=datetime(2025, 1, 20), closed_at=datetime(2025, 4, 10))
    insert_cases(tiny_engine, [b, {**b, "case_id": "B-ext", "extended": True}])
    frame = compute_metrics(Store(tiny_engine, SETTINGS), level="village", as_of=AS_OF)
    v = _row(frame, V1S)
    # without extension due Mar 21 (late); with extension due Apr 20 (on time)
    assert (v["on_time_completion_num"], v["on_time_completion_den"]) == (1, 2)


def test_a_case_not_yet_due_belongs_to_a_later_period(tiny_engine):
    # accepted Jun 10 → due Aug 9, after the data date (Jun 30): still open, not yet due
    pending = case(V1S, registered_at=datetime(2025, 6, 1, 9, 0), accepted_at=datetime(2025, 6, 10))
    on_time = case(V1S, accepted_at=datetime(2025, 1, 10), closed_at=datetime(2025, 3, 1))
    insert_cases(tiny_engine, [pending, on_time])
    v = _row(compute_metrics(Store(tiny_engine, SETTINGS), level="village", as_of=AS_OF), V1S)
    # a window without an end stops at the data date: only the case due in it counts
    assert (v["on_time_completion_num"], v["on_time_completion_den"]) == (1, 1)
    assert (v["cases"], v["open_cases"], v["overdue_open"]) == (2, 1, 0)
    # a reporting period that reaches August counts it as 未到期未办结 in the denominator
    to_august = Filters(date_to=date(2025, 8, 31))
    v = _row(compute_metrics(Store(tiny_engine, SETTINGS),
                             level="village", filters=to_august, as_of=AS_OF), V1S)
    assert (v["on_time_completion_num"], v["on_time_completion_den"]) == (1, 2)


def test_window_applies_to_each_cohort_date(six):
    march = Filters(date_from=date(2025, 3, 1), date_to=date(2025, 3, 31))
    v = _row(compute_metrics(Store(six, SETTINGS), level="village", filters=march, as_of=AS_OF), V1S)
    assert v["cases"] == 0  # nothing registered in March
    # due dates in March: a (Mar 11, on time), e (Mar 6, on time), f (Mar 3, late)
    assert (v["on_time_completion_num"], v["on_time_completion_den"]) == (2, 3)
    # closed in March: a only (repeated) → 0 / 1
    assert (v["first_time_resolution_num"], v["first_time_resolution_den"]) == (0, 1)
    # rated in March: a → 1/1; replied in March: a → 1/1
    assert (v["satisfaction_num"], v["satisfaction_den"]) == (1, 1)
    assert (v["participation_num"], v["participation_den"]) == (1, 1)
    assert (v["timely_acceptance_den"], v["days_to_close_median"]) == (0, 69.25)


def test_attribute_and_status_filters(six):
    by_category = compute_metrics(Store(six, SETTINGS), level="village",
                                  filters=Filters(category=("劳动社保",)), as_of=AS_OF)
    assert _row(by_category, V1S)["cases"] == 2  # c, e
    online = Filters(channel=("网上",), purpose=("求决",))
    assert _row(compute_metrics(Store(six, SETTINGS),
                                level="village", filters=online, as_of=AS_OF), V1S)["cases"] == 2  # a, d
    overdue = compute_metrics(Store(six, SETTINGS), level="village",
                              filters=Filters(status=("overdue",)), as_of=AS_OF)
    assert _row(overdue, V1S)["cases"] == 1
    open_or_closed = Filters(status=("open", "closed"))
    assert _row(compute_metrics(Store(six, SETTINGS),
                                level="village", filters=open_or_closed, as_of=AS_OF), V1S)["cases"] == 6


def test_all_unrated(tiny_engine):
    rows = [case(V2S, accepted_at=datetime(2025, 1, 2), closed_at=datetime(2025, 1, 20),
                 replied_at=datetime(2025, 1, 20)) for _ in range(3)]
    insert_cases(tiny_engine, rows)
    v = _row(compute_metrics(Store(tiny_engine, SETTINGS), level="village", as_of=AS_OF), V2S)
    assert (v["satisfaction_num"], v["satisfaction_den"]) == (0, 0)
    assert math.isnan(v["satisfaction"])
    assert (v["participation_num"], v["participation_den"]) == (0, 3)  # all expired
    assert (v["first_time_resolution_num"], v["first_time_resolution_den"]) == (0, 3)
    # still inside the 30-day window on Feb 10: neither rated nor expired → excluded
    early = _row(compute_metrics(Store(tiny_engine, SETTINGS), level="village", as_of=date(2025, 2, 10)), V2S)
    assert (early["participation_num"], early["participation_den"]) == (0, 0)


def test_as_of_ignores_later_events(six):
    v = _row(compute_metrics(Store(six, SETTINGS), level="village", as_of=datetime(2025, 3, 10, 12, 0)), V1S)
    # registered by then: a b c e f (d came Apr 1); closed by then: e only
    assert (v["cases"], v["open_cases"]) == (5, 4)
    # overdue open on Mar 10: f (due Mar 3); a is due Mar 11, b Apr 20, c has no due date
    assert v["overdue_open"] == 1
    assert (v["satisfaction_num"], v["satisfaction_den"]) == (1, 1)  # a rated Mar 5


def test_unassigned_counted_in_city_and_own_row(six):
    insert_cases(six, [case(None), case(None, is_repeat=True)])
    for level in ("village", "street", "district"):
        frame = compute_metrics(Store(six, SETTINGS), level=level, as_of=AS_OF)
        city, unassigned = _row(frame, CITY), _row(frame, "unassigned")
        assert (city["cases"], unassigned["cases"]) == (8, 2), level
        assert (city["repeat_num"], city["repeat_den"]) == (2, 8)
        assert city["row_type"] == "city" and unassigned["row_type"] == "unassigned"
        units = frame[frame["row_type"] == "unit"]
        assert units["cases"].sum() + unassigned["cases"] == city["cases"]


def test_street_only_case_counts_at_street_and_above(six):
    insert_cases(six, [case(None, street_code=S1, district_code=D1, attach_method="code")])
    village = compute_metrics(Store(six, SETTINGS), level="village", as_of=AS_OF)
    street = compute_metrics(Store(six, SETTINGS), level="street", as_of=AS_OF)
    assert _row(village, "unassigned")["cases"] == 1
    assert _row(street, S1)["cases"] == 7 and _row(street, "unassigned")["cases"] == 0


def test_rollup_rates_from_sums_not_averages(tiny_engine):
    # V1S: 1 of 1 on time; V1N: 0 of 3 on time → street S1 is 1/4, not mean(1, 0) = 0.5
    rows = [case(V1S, accepted_at=datetime(2025, 1, 2), closed_at=datetime(2025, 1, 30))]
    rows += [case(V1N, accepted_at=datetime(2025, 1, 2), closed_at=datetime(2025, 5, 30))
             for _ in range(3)]
    insert_cases(tiny_engine, rows)
    street = compute_metrics(Store(tiny_engine, SETTINGS), level="street", as_of=AS_OF)
    s1 = _row(street, S1)
    assert (s1["on_time_completion_num"], s1["on_time_completion_den"]) == (1, 4)
    assert s1["on_time_completion"] == pytest.approx(0.25)


def test_parent_code_limits_rows_and_adds_parent_row(six):
    insert_cases(six, [case(V3S)])
    frame = compute_metrics(Store(six, SETTINGS), level="village", parent_code=S1, as_of=AS_OF)
    assert list(frame["row_type"]) == ["unit", "unit", "parent", "city", "unassigned"]
    assert list(frame["code"][:3]) == [V1S, V1N, S1]
    assert list(frame["cases"]) == [6, 0, 6, 7, 0]


def test_same_answers_from_cached_copy_and_after_new_cases(six):
    first = compute_metrics(Store(six, SETTINGS), level="district", as_of=AS_OF)
    again = compute_metrics(Store(six, SETTINGS), level="district", as_of=AS_OF)
    assert first.equals(again)
    insert_cases(six, [case(V3S)])
    after = compute_metrics(Store(six, SETTINGS), level="district", as_of=AS_OF)
    assert list(after["cases"]) == [6, 1, 7, 0]


def test_a_kept_selection_gives_the_answers_of_a_fresh_one(six, monkeypatch):
    """Filtered selections are kept per table (metrics.SELECTIONS_KEPT); reuse and eviction
    must not change any figure."""
    import pandas as pd

    from layers import metrics

    monkeypatch.setattr(metrics, "SELECTIONS_KEPT", 2)
    filters = [Filters(category=("劳动社保",)), Filters(channel=("网上",)),
               Filters(status=("overdue",)), Filters(date_from=date(2025, 2, 1))]
    store = Store(six, SETTINGS)

    def fresh(level: str, chosen: Filters, parent: str | None = None) -> pd.DataFrame:
        case_table(store)._memo.pop("selections", None)  # nothing kept: computed anew
        return compute_metrics(store, level=level, filters=chosen, parent_code=parent,
                               as_of=AS_OF)

    expected = {(level, i): fresh(level, chosen) for level in ("district", "village")
                for i, chosen in enumerate(filters)}
    for _ in range(2):  # in an order that reuses some and evicts others
        for i, chosen in (*enumerate(filters), *reversed(list(enumerate(filters)))):
            for level in ("village", "district"):
                got = compute_metrics(store, level=level, filters=chosen, as_of=AS_OF)
                pd.testing.assert_frame_equal(got, expected[(level, i)])
    assert len(case_table(store)._memo["selections"]) == 2


def test_case_table_and_data_dates(six):
    table = case_table(Store(six, SETTINGS))
    assert len(table) == 6
    assert not {"petitioner_name", "petitioner_phone", "address", "description"} & (
        set(table.times) | set(table.categoricals) | set(table.numbers))
    assert table.minutes("registered_at").dtype == np.int32
    # a's due date was filled from accepted_at + 60 days
    assert table.minutes("due_at")[0] == minutes_of(datetime(2025, 3, 11, 0, 0))
    assert data_as_of(Store(six, SETTINGS)) == datetime(2025, 6, 2)  # f's rating, the latest
    assert data_range(Store(six, SETTINGS)) == (date(2025, 1, 1), date(2025, 4, 1))


def test_unknown_level_or_parent_is_an_actionable_error(six):
    with pytest.raises(GridgovError, match="grid"):
        compute_metrics(Store(six, SETTINGS), level="grid")
    with pytest.raises(GridgovError, match="parent"):
        compute_metrics(Store(six, SETTINGS), level="village", parent_code="440199000000")


def test_odd_text_falls_back_to_the_row_reader(tiny_engine):
    # a line break inside a value would shift the joined column text: the row reader takes over
    insert_cases(tiny_engine, [case(V1S, case_id="A\nB", category="城乡\n建设"), case(V2S)])
    table = case_table(Store(tiny_engine, SETTINGS))
    assert table.case_id[0] == "A\nB"
    assert table.categoricals["category"][0] == "城乡\n建设"
    assert list(table.minutes("registered_at")) == [minutes_of(datetime(2025, 1, 1, 9, 0))] * 2


def test_the_copy_follows_the_store_version(six):
    import sqlalchemy as sa

    from geo import schema

    store = Store(six, SETTINGS)
    assert compute_metrics(store, level="district")["cases"].iloc[0] == 6
    with six.begin() as conn:  # a write that does not bump the version is not data yet
        conn.execute(sa.insert(schema.cases), [case(V1S)])
    assert compute_metrics(store, level="district")["cases"].iloc[0] == 6
    insert_cases(six, [case(V1S)])  # written as every write of data is: version bumped
    assert compute_metrics(store, level="district")["cases"].iloc[0] == 8


def test_a_window_opening_after_the_data_day_counts_nothing(six):
    later = Filters(date_from=date(2027, 1, 1))
    v = _row(compute_metrics(Store(six, SETTINGS), level="village", filters=later, as_of=AS_OF),
             V1S)
    assert v["cases"] == 0 and v["on_time_completion_den"] == 0
