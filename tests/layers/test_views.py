"""The dashboard's view tables on the tiny grid, with eight hand-made cases.

As of 2025-06-30 00:00 (the newest timestamp, case C8's registration), village
440103001001 (甲一街道南社区) holds C1–C5, its northern neighbour 440103001201 holds C6,
乙一街道's village holds C7 (not accepted), and C8 is unassigned::

    case  registered  due         closed/replied           flags           as of 06-30
    C1    06-25       08-25                                                open, 5 days
    C2    04-01       06-01                                backlog 王副区长  overdue, 90 days
    C3    05-01       07-03                                                due in 3 days, 60 days
    C4    01-01       03-01       replied 01-30, closed 02-01              closed on time
    C5    06-10       08-10       replied 06-20                            open, 20 days
    C6    02-01       04-01                                repeat of C4    overdue, 149 days
    C7    06-01                   not accepted                             not open
    C8    06-30                   unassigned                               open, 0 days
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from geo import schema
from geo.errors import CodeError
from geo.settings import Settings
from geo.store import Store, bump_version
from layers import views
from layers.exports import export_frames
from layers.filters import Filters
from layers.lists import ageing, case_list
from layers.units import unit_of, unit_path

AS_OF = datetime(2025, 6, 30)
VILLAGE = "440103001001"
NORTH = "440103001201"
STREET = "440103001000"
DISTRICT = "440103000000"
SETTINGS = Settings()


def _case(case_id: str, registered: str, *, village: str | None = VILLAGE, **values) -> dict:
    codes = {}
    if village:
        codes = {"village_code": village, "street_code": village[:9] + "000",
                 "district_code": village[:6] + "000000", "attach_method": "point",
                 "lon": 113.305, "lat": 23.105}
    else:
        codes = {"attach_method": "unassigned"}
    row = {
        "case_id": case_id, "registered_at": datetime.fromisoformat(registered),
        "status": "accepted", "category": "城乡建设", "purpose": "求决", "channel": "来访",
        "row_hash": case_id, "updated_at": AS_OF, "extended": False, "is_repeat": False,
        "is_backlog": False, "synthetic": True, "petitioner_name": "张三丰",
        "petitioner_phone": "13812345678", **codes,
    }
    for key, value in values.items():
        row[key] = datetime.fromisoformat(value) if key.endswith("_at") and value else value
    return row


CASES = [
    _case("C1", "2025-06-25", accepted_at="2025-06-26", due_at="2025-08-25"),
    _case("C2", "2025-04-01", accepted_at="2025-04-02", due_at="2025-06-01", is_backlog=True,
          backlog_leader="王副区长", category="劳动和社会保障"),
    _case("C3", "2025-05-01", accepted_at="2025-05-03", due_at="2025-07-03"),
    _case("C4", "2025-01-01", accepted_at="2025-01-02", due_at="2025-03-01",
          replied_at="2025-01-30", closed_at="2025-02-01", status="closed"),
    _case("C5", "2025-06-10", accepted_at="2025-06-11", due_at="2025-08-10",
          replied_at="2025-06-20", status="replied"),
    _case("C6", "2025-02-01", village=NORTH, accepted_at="2025-02-01", due_at="2025-04-01",
          is_repeat=True, repeat_of="C4"),
    _case("C7", "2025-06-01", village="440104001001", status="not_accepted"),
    _case("C8", "2025-06-30", village=None, status="registered"),
]


@pytest.fixture
def store(tiny_engine: sa.Engine) -> Store:
    """The tiny grid with the eight cases and two stations."""
    _insert(tiny_engine, CASES)
    stations = [
        {"station_id": "S1", "name": "南社区服务站", "station_type": "station", "lon": 113.305,
         "lat": 23.105, "village_code": VILLAGE, "serves_code": VILLAGE, "street_code": STREET,
         "district_code": DISTRICT, "address": None, "synthetic": True, "run_id": None},
        {"station_id": "S2", "name": "甲镇综治中心", "station_type": "centre", "lon": 113.315,
         "lat": 23.115, "village_code": None, "serves_code": "440103101000",
         "street_code": "440103101000", "district_code": DISTRICT, "address": None,
         "synthetic": True, "run_id": None},
    ]
    with tiny_engine.begin() as conn:
        conn.execute(schema.station.insert(), stations)
        bump_version(conn)
    return Store(tiny_engine, SETTINGS)


def _insert(engine: sa.Engine, cases: list[dict]) -> None:
    columns = [c.name for c in schema.cases.c]
    with engine.begin() as conn:
        conn.execute(schema.cases.insert(), [{c: row.get(c) for c in columns} for row in cases])
        bump_version(conn)


def _ids(cases) -> list[str]:
    return list(cases.rows["case_id"])


def test_data_info_gives_range_as_of_and_demo_flag(store):
    info = views.data_info(store)
    assert (info.date_from, info.date_to) == (date(2025, 1, 1), date(2025, 6, 30))
    assert info.as_of == AS_OF
    assert info.cases == 8
    assert info.synthetic is True


def test_data_info_on_an_empty_store(tiny_engine):
    info = views.data_info(Store(tiny_engine, SETTINGS))
    assert info.cases == 0 and info.date_from is None and info.synthetic is False


def test_unit_path_runs_from_city_to_village(store):
    path = unit_path(store, VILLAGE)
    assert [u.code for u in path] == ["440100000000", DISTRICT, STREET, VILLAGE]
    assert path[-1].name == "甲一街道南社区"


def test_unknown_code_is_an_actionable_error(store):
    with pytest.raises(CodeError, match="440103009000"):
        unit_of(store, "440103009000")


def test_city_scope_holds_every_open_case_including_unassigned(store):
    assert sorted(_ids(case_list(store, "440100000000", "open", as_of=AS_OF))) == [
        "C1", "C2", "C3", "C5", "C6", "C8"]  # C4 closed, C7 not accepted


def test_scope_and_filters_narrow_the_lists(store):
    assert _ids(case_list(store, STREET, "overdue", as_of=AS_OF)) == ["C6", "C2"]
    overdue = case_list(store, "440100000000", "open", filters=Filters(status=("overdue",)),
                        as_of=AS_OF)
    assert sorted(_ids(overdue)) == ["C2", "C6"]
    labour = case_list(store, VILLAGE, "open", filters=Filters(category=("劳动和社会保障",)),
                       as_of=AS_OF)
    assert _ids(labour) == ["C2"]
    june = case_list(store, VILLAGE, "open", as_of=AS_OF,
                     filters=Filters(date_from=date(2025, 6, 1), date_to=date(2025, 6, 25)))
    assert sorted(_ids(june)) == ["C1", "C5"]


def test_ageing_buckets_count_open_cases_by_days_since_registration(store):
    # C1 5 days; C5 20 and C3 60 days; C2 90 days; C6 149 days; C4 closed.
    assert ageing(store, STREET, as_of=AS_OF).to_dict("records") == [
        {"bucket": "0–15天", "cases": 1},
        {"bucket": "16–60天", "cases": 2},
        {"bucket": "61–90天", "cases": 1},
        {"bucket": ">90天", "cases": 1},
    ]


def test_street_view(store):
    view = views.street_view(store, STREET, as_of=AS_OF)
    by_village = view.open_by_village.set_index("code")
    assert by_village.loc[VILLAGE, ["open_cases", "overdue_open"]].tolist() == [4, 1]
    assert by_village.loc[NORTH, ["open_cases", "overdue_open"]].tolist() == [1, 1]
    assert _ids(view.lists["overdue"]) == ["C6", "C2"]  # most overdue first
    assert _ids(view.lists["due_soon"]) == ["C3"]
    assert _ids(view.lists["repeats"]) == ["C6"]
    backlog = view.lists["backlog_open"].rows
    assert backlog[["case_id", "backlog_leader"]].values.tolist() == [["C2", "王副区长"]]
    assert list(view.villages_without_station["code"]) == [NORTH]
    assert view.counts["cases"] == 6
    assert {name: lst.total for name, lst in view.lists.items()} == {
        "overdue": 2, "due_soon": 1, "acceptance": 0, "followup": 2, "rating": 1,
        "backlog_open": 1, "backlog_resolved": 0, "repeats": 1}
    for lst in view.lists.values():  # every list is as long as the card above it
        assert lst.total == view.counts[lst.rule.count]


def test_street_lists_stop_at_their_limit_but_the_backlog_is_whole(store, monkeypatch):
    monkeypatch.setattr(views, "STREET_ROWS", 1)
    view = views.street_view(store, STREET, as_of=AS_OF)
    assert _ids(view.lists["overdue"]) == ["C6"] and view.lists["overdue"].total == 2
    assert len(view.lists["followup"].rows) == 1 and view.lists["followup"].total == 2
    assert len(view.lists["backlog_open"].rows) == view.lists["backlog_open"].total == 1


def test_a_village_chosen_in_the_street_view_owns_the_cards_and_lists(store):
    whole = views.street_view(store, STREET, as_of=AS_OF)
    north = views.street_view(store, STREET, as_of=AS_OF, focus=NORTH)
    assert north.counts["open_cases"] == 1 and north.counts["overdue_open"] == 1
    assert _ids(north.lists["overdue"]) == [c for c in _ids(whole.lists["overdue"])
                                            if c in _ids(north.lists["overdue"])]
    assert north.lists["overdue"].total == 1
    for lst in north.lists.values():  # still as long as the card above it
        assert lst.total == north.counts[lst.rule.count]
    pd.testing.assert_frame_equal(north.open_by_village, whole.open_by_village)
    with pytest.raises(CodeError):
        views.street_view(store, STREET, focus="440104001001")  # another street's village


def test_street_lists_mask_names(store):
    rows = views.street_view(store, STREET, as_of=AS_OF).lists["overdue"].rows
    assert set(rows["petitioner_name"]) == {"张**"}
    assert "petitioner_phone" not in rows


def test_street_view_refuses_a_village_code(store):
    with pytest.raises(CodeError, match="镇街"):
        views.street_view(store, VILLAGE)


def test_village_view_lists_what_is_due(store):
    view = views.village_view(store, VILLAGE, as_of=AS_OF)
    assert view.lists["open"].rows[["case_id", "urgency"]].values.tolist() == [
        ["C2", "overdue"], ["C3", "soon"], ["C5", "ok"], ["C1", "ok"]]
    assert view.lists["open"].rows["deadline_text"].tolist() == [
        "超期 29 天", "剩 3 天", "剩 41 天", "剩 56 天"]
    assert sorted(_ids(view.lists["followup"])) == ["C4", "C5"]
    # C4 was replied 01-30: its 30-day rating window has passed (超期未评价).
    assert _ids(view.lists["rating"]) == ["C5"]
    assert view.lists["rating"].rows["waited_days"].tolist() == [10]
    assert view.nearest_stations["station_id"].tolist()[0] == "S1"
    assert view.nearest_stations["distance_m"].iloc[0] < 50
    assert view.nearest_stations["type_zh"].iloc[0] == "村居服务站"


def test_village_view_reads_each_list_up_to_its_limit_and_counts_all(store, monkeypatch):
    monkeypatch.setitem(views.VILLAGE_ROWS, "open", 2)
    monkeypatch.setitem(views.VILLAGE_ROWS, "followup", 1)
    view = views.village_view(store, VILLAGE, as_of=AS_OF)
    assert view.lists["open"].rows["case_id"].tolist() == ["C2", "C3"]  # the most urgent
    assert view.lists["open"].total == 4
    assert len(view.lists["followup"].rows) == 1 and view.lists["followup"].total == 2


def test_village_view_with_no_cases_is_empty_not_an_error(store):
    view = views.village_view(store, "440104002201", as_of=AS_OF)
    assert view.counts["cases"] == 0
    assert view.lists["open"].total == 0 and view.lists["followup"].rows.empty


def test_monthly_trend_counts_and_rates_from_own_numerators(store):
    trend = views.monthly_trend(store, STREET, months=6, as_of=AS_OF).set_index("month")
    assert trend.index.tolist() == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05",
                                    "2025-06"]
    assert trend["cases"].tolist() == [1, 1, 0, 1, 1, 2]
    # C4 due 03-01, closed 02-01: on time
    assert tuple(trend.loc["2025-03", ["on_time_completion_num", "on_time_completion_den"]]) \
        == (1, 1)
    # C6 (due 04-01, open) is a 重件: the on-time cohort is 初件 only
    assert trend.loc["2025-04", "on_time_completion_den"] == 0
    assert trend.loc["2025-02", "repeat"] == 1.0
    assert not trend["partial"].any()  # the data date is the last day of June


def test_a_month_of_the_trend_equals_the_metrics_of_that_month(store):
    trend = views.monthly_trend(store, STREET, months=6, as_of=AS_OF).set_index("month")
    for month, first, last in (("2025-03", date(2025, 3, 1), date(2025, 3, 31)),
                               ("2025-06", date(2025, 6, 1), date(2025, 6, 30))):
        row = views.unit_row(store, STREET, filters=Filters(date_from=first, date_to=last),
                             as_of=AS_OF)
        for column in ("cases", "open_cases", "overdue_open", "on_time_completion_num",
                       "on_time_completion_den", "satisfaction_den", "participation_den"):
            assert trend.loc[month, column] == row[column], (month, column)


def test_export_masks_personal_fields_and_uses_chinese_headers(store):
    table = pd.concat(list(export_frames(store, "440100000000", as_of=AS_OF)))
    assert len(table) == 8
    assert set(table["信访人"]) == {"张**"}
    assert set(table["联系电话"]) == {"138****5678"}
    assert "petitioner_id_hash" not in table and "信访件编号" in table
    assert table.loc[table["信访件编号"] == "C2", "积案"].item() == "是"
    assert table.loc[table["信访件编号"] == "C2", "办理期限状态"].item() == "超期未办结 超期 29 天"
    assert table.loc[table["信访件编号"] == "C4", "评价状态"].item() == "超期未评价"


def test_export_of_a_street_with_a_filter_comes_in_chunks(store):
    chunks = list(export_frames(store, STREET, filters=Filters(status=("overdue",)),
                                as_of=AS_OF, chunk_rows=1))
    assert len(chunks) == 2 and sorted(pd.concat(chunks)["信访件编号"]) == ["C2", "C6"]


def test_city_view_ranks_only_units_with_enough_cases(store):
    view = views.city_view(store, filters=Filters(), as_of=AS_OF)
    ranking = view.ranking.set_index("code")
    assert ranking.loc[DISTRICT, "cases"] == 6 and ranking.loc["440104000000", "cases"] == 1
    assert ranking["rank"].isna().all()  # fewer than 10 cases each: no rank
    assert view.kpis["cases"] == 8  # the city counts the unassigned case too
    assert view.unassigned_cases == 1
    assert view.child_level == "district"

    low = views.city_view(Store(store.engine, Settings(min_cases_for_rate=1)), as_of=AS_OF)
    ranks = low.ranking.set_index("code")["rank"]
    assert ranks[DISTRICT] == 1
    assert ranks.isna()["440104000000"]  # C7 was not accepted: no deadline, no rate


def test_city_view_of_a_district_ranks_its_streets(store):
    view = views.city_view(store, DISTRICT, as_of=AS_OF)
    assert view.kpis["cases"] == 6
    assert sorted(view.ranking["code"]) == [STREET, "440103101000"]
    assert view.child_level == "street"


def test_peer_comparison_puts_the_city_last(store):
    peers = views.peer_comparison(store, DISTRICT, metric="on_time_completion", as_of=AS_OF)
    assert peers["role"].tolist()[-1] == "city"
    assert set(peers["role"]) == {"unit", "peer", "city"}
    assert peers.loc[peers["role"] == "unit", "code"].item() == DISTRICT


def test_a_missing_deadline_is_filled_from_acceptance_as_the_metrics_fill_it(tiny_engine):
    plain = _case("D1", "2025-03-01", accepted_at="2025-03-02")
    extended = _case("D2", "2025-03-01", accepted_at="2025-03-02", extended=True)
    _insert(tiny_engine, [plain, extended])
    store = Store(tiny_engine, SETTINGS)
    rows = case_list(store, VILLAGE, "overdue", as_of=AS_OF).rows.set_index("case_id")
    # accepted 03-02: + 60 days = 05-01; extended + 90 days = 05-31; both overdue on 06-30
    assert rows.loc["D1", "due"] == date(2025, 5, 1)
    assert rows.loc["D2", "due"] == date(2025, 5, 31)
    assert rows.loc[["D1", "D2"], "days_left"].tolist() == [-60, -30]
    assert views.unit_row(store, VILLAGE, as_of=AS_OF)["overdue_open"] == 2


def test_monthly_trend_keeps_only_cases_that_pass_the_attribute_filters(store):
    labour = Filters(category=("劳动和社会保障",))
    trend = views.monthly_trend(store, STREET, filters=labour, months=6, as_of=AS_OF)
    assert trend["cases"].tolist() == [0, 0, 0, 1, 0, 0]  # C2 only, registered 04-01
    nobody = Filters(category=("城乡建设",), channel=("网上",))  # no case came in online
    trend = views.monthly_trend(store, STREET, filters=nobody, months=6, as_of=AS_OF)
    assert trend["cases"].sum() == 0
