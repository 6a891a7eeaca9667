"""The URL carries a view's whole state: unit, metric, overlays and filters."""

from __future__ import annotations

from datetime import date

from dashboard.query import CITY_CODE, ViewState
from layers.filters import Filters


def test_round_trip_through_the_url():
    state = ViewState(unit="440103001000", metric="satisfaction", overlays=("points", "stations"),
                      filters=Filters(date_from=date(2025, 1, 1), category=("城乡建设", "教育"),
                                      status=("overdue",)))
    search = state.to_search()
    assert search.startswith("?unit=440103001000&metric=satisfaction&show=points&show=stations")
    assert ViewState.from_params(search) == state


def test_defaults_leave_the_url_clean():
    assert ViewState().to_search() == ""
    assert ViewState.from_params("") == ViewState()
    assert ViewState.from_params(None).unit == CITY_CODE


def test_router_style_params_with_single_and_repeated_values():
    # dash's page router passes single values as str and repeated keys as lists
    params = {"unit": "440104000000", "show": ["points", "bogus"], "category": "教育",
              "from": "2025-03-01"}
    state = ViewState.from_params(params)
    assert state.unit == "440104000000"
    assert state.overlays == ("points",)
    assert state.filters == Filters(date_from=date(2025, 3, 1), category=("教育",))


def test_bad_values_are_refused_with_a_message_and_the_nearest_valid_view():
    state, problems = ViewState.parse(
        "?unit=abc&status=nonsense&from=2025-05-01&to=2025-01-01&metric=%3Cx%3E&show=zz")
    assert state == ViewState(filters=Filters(date_from=date(2025, 1, 1),
                                              date_to=date(2025, 5, 1)))
    assert len(problems) == 5
    assert any("abc" in p and "全市" in p for p in problems)
    assert any("<x>" in p and "按期办结率" in p for p in problems)
    assert any("对调" in p for p in problems)
    assert ViewState.from_params("?unit=abc") == ViewState()


def test_values_that_are_not_text_are_refused():
    for params in ({"unit": 5}, {"show": [None, {"a": 1}]}, {"from": ["2025-01-01", 3]},
                   ["not", "a", "mapping"], "?" + "x" * 5000):
        state, problems = ViewState.parse(params)
        assert problems and isinstance(state, ViewState)
    state, problems = ViewState.parse({"from": "2025-02-30", "to": "20250101"})
    assert state.filters == Filters() and len(problems) == 2


def test_a_date_leaving_no_day_of_data_is_dropped_with_a_message():
    from dashboard.query import fit_to_data

    first, last = date(2024, 7, 1), date(2025, 6, 30)
    view = ViewState.from_params("?from=2027-01-01&to=2027-02-01")
    fitted, problems = fit_to_data(view, first, last)
    assert fitted.filters.date_from is None and fitted.filters.date_to == date(2027, 2, 1)
    assert problems and "2027-01-01" in problems[0] and "2025-06-30" in problems[0]
    early = ViewState.from_params("?to=2020-01-31")
    assert fit_to_data(early, first, last)[0].filters.date_to is None
    inside = ViewState.from_params("?from=2020-01-01&to=2025-01-31")  # reaches past: fine
    assert fit_to_data(inside, first, last) == (inside, ())
    assert fit_to_data(view, None, None) == (view, ())


def test_the_date_note_names_what_is_wrong():
    from dashboard.shell import date_note

    first, last = date(2024, 7, 1), date(2025, 6, 30)
    assert "早于开始日期" in date_note(date(2025, 5, 1), date(2025, 4, 1), first, last)
    assert "超出数据范围" in date_note(date(2026, 1, 1), date(2026, 2, 1), first, last)
    assert "截至 2025-06-30" in date_note(date(2025, 6, 1), date(2025, 7, 31), first, last)
    assert date_note(date(2025, 5, 1), date(2025, 5, 31), first, last) is None
