"""The scope sweep: every callback, download and route, as anonymous and as every role.

The callbacks come from ``/_dash-dependencies`` and the routes from the Flask URL map, so a
callback or route added later fails :func:`test_every_callback_and_route_is_swept` until the
sweep knows how to call it with units and case ids inside and outside a scope.

"Nothing from outside the scope" is checked by difference, which catches rows, counts, rates,
ranks and personal fields alike: each role's answers on the demo store (A) must equal, byte
for byte, its answers on a copy of A from which every case outside the role's scope has been
deleted (B). One case inside the smallest scope is given the data's latest timestamp, so both
stores have the same "as of" moment (the export date, the one figure every scope shares).
Requests outside the scope must be refused (403, or the refusal page) and audited; no answer
may carry a petitioner's unmasked name or phone unless it is the reveal of that one case by a
role allowed to reveal it.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
from datetime import timedelta
from functools import partial

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.state import STORE_KEY
from geo import audit, schema
from geo.scope import Scope
from geo.store import Store, bump_version, make_engine
from layers.access import scope_mask
from layers.casedata import case_table, table_as_of
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.dash_client import DashClient
from tests.dashboard.stores import serving

CITY = "440100000000"
UNITS = ["440100000000", "440103000000", "440104000000", "440103001000", "440103101000",
         "440103001001", "440103001201", "440104002201"]
"""Units the sweep names: the city, both districts, streets and villages on each side."""
PAGE_OF = {"city": "city", "district": "city", "street": "street", "village": "village"}
PATHS = {"city": "/", "street": "/street", "village": "/village"}
OPEN311_ROUTES = {
    "/open311/v2/discovery.json", "/open311/v2/services.json", "/open311/v2/services/<code>.json",
    "/open311/v2/requests.json", "/open311/v2/requests/<request_id>.json",
    "/open311/v2/requests/<request_id>/updates.json", "/open311/v2/<path:rest>",
    "/report/status", "/report/<token>", "/report/static/<path:filename>",
}
"""The Open311 API and the public QR form: the API's scope comes from the key alone
(tests/dashboard/test_open311.py sweeps keys of each level), the form's from its poster
(tests/dashboard/test_report.py); here every role's session, without a key, gets no case data."""
KNOWN_ROUTES = {
    "/static/<path:filename>", "/assets/<path:filename>", "/_favicon.ico",
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
    "/_dash-layout", "/_dash-dependencies", "/_dash-update-component", "/_reload-hash",
    "/", "/<path:path>", "/login", "/logout", "/password",
    "/download/<page>/cases.csv", "/download/<page>/cases.xlsx", "/download/<page>/map.html",
    "/download/<page>/report.docx",
    "/download/warnings.csv", "/csp-report", "/exports/<job_id>",
    *OPEN311_ROUTES,
}
"""Every route of the app; the sweep calls the data routes below as every role."""
QUERY_CALLBACKS = {"map-units.data", "shell-data-label.children",
                   "city-kpis.children", "city-trend.figure", "city-peers.children",
                   "street-body-side.children", "village-body.children",
                   "city-warnings.children", "street-warnings.children",
                   "village-warnings.children", "city-two-strong.children"}
"""Callbacks whose only unit comes from the view-query store."""
OWN_PAGE = {"city-kpis.children": "city", "city-trend.figure": "city",
            "city-two-strong.children": "city",
            "city-peers.children": "city", "street-body-side.children": "street",
            "village-body.children": "village", "city-warnings.children": "city",
            "street-warnings.children": "street", "village-warnings.children": "village"}
"""A page's own callbacks compute that page for the unit, whatever page the store claims."""
OTHER_CALLBACKS = {"url.search", "view-nav.data", "city-ranking-pick.data",
                   "case-reveal-result.children",
                   "_pages_content.children", "flt-dates-note.children", "my-exports-tick.data",
                   "my-exports-list.children"}
"""The URL writers (navigate, presets, pickers, the ranking click: into the URL or the page's
store that the browser copies there), the reveal, the page router and the note under the date
picker (the account's own data range), and 我的导出 (start a background export, list the
session's exports)."""
PLACEMENT_CALLBACKS = {"street-placement.children", "placement-village.options",
                       "placement-result.children"}
"""The street view's 待更正落格 list, its village choices and the correction (a write: the
sweep sends only requests that must be refused; tests/dashboard/test_placement.py corrects)."""
WARNING_CALLBACKS = {"warn-grid.rowData", "warn-map-hot.data", "warn-microscope.children",
                     "warn-detail.children", "warn-saved.data", "warn-selected.data"}
"""The 预警 page's callbacks: their unit comes from the page's own store (warn-query)."""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sweep(dash_app, demo_store, demo_accounts, tmp_path_factory):
    """Store A (a pinned copy of the demo store) served by the session's app; yields helpers."""
    folder = tmp_path_factory.mktemp("sweep")
    a_path = folder / "a.db"
    _copy(demo_store.url.database, a_path)
    engine_a = make_engine(f"sqlite:///{a_path}")
    with engine_a.begin() as conn:  # a quarter of the demo cases: every surface, less waiting
        conn.execute(sa.text("DELETE FROM case_event WHERE case_id IN (SELECT case_id FROM cases"
                             " WHERE rowid % 4 <> 0)"))
        conn.execute(sa.text("DELETE FROM cases WHERE rowid % 4 <> 0"))
        bump_version(conn)
    store_a = Store(engine_a, APP_SETTINGS)
    _pin_as_of(store_a, demo_accounts["grid_worker"].scope_code)
    from layers.warnings.run import run_warnings

    run_warnings(store_a)  # the stored warnings of A (B copies them with its cases)
    original = dash_app.server.config[STORE_KEY]
    dash_app.server.config[STORE_KEY] = store_a
    try:
        yield {"app": dash_app, "a": store_a, "a_path": a_path, "folder": folder,
               "password": demo_accounts["password"], "accounts": demo_accounts,
               "contacts": _contacts(engine_a)}
    finally:
        dash_app.server.config[STORE_KEY] = original
        engine_a.dispose()


# --------------------------------------------------------------------------- tests


def test_every_callback_and_route_is_swept(sweep, demo_accounts):
    client = DashClient(sweep["app"].server.test_client())
    client.login("demo-city", sweep["password"])
    names = {cb.name for cb in client.callbacks()}
    unknown = names - QUERY_CALLBACKS - OTHER_CALLBACKS - WARNING_CALLBACKS - PLACEMENT_CALLBACKS
    assert not unknown, f"callbacks the scope sweep does not exercise: {sorted(unknown)}"
    assert QUERY_CALLBACKS | OTHER_CALLBACKS | WARNING_CALLBACKS | PLACEMENT_CALLBACKS <= names
    routes = {rule.rule for rule in sweep["app"].server.url_map.iter_rules()}
    assert routes == KNOWN_ROUTES, f"routes the scope sweep does not know: {routes ^ KNOWN_ROUTES}"


@pytest.mark.parametrize("role", ["grid_worker", "street", "district", "city", "admin"])
def test_a_session_is_no_api_key(sweep, role):
    client = DashClient(sweep["app"].server.test_client())
    client.login(sweep["accounts"][role].username, sweep["password"])
    case_id = str(case_table(sweep["a"]).case_id[0])
    for method, path in (("get", "/open311/v2/requests.json"),
                         ("get", f"/open311/v2/requests/{case_id}.json"),
                         ("post", "/open311/v2/requests.json"),
                         ("post", f"/open311/v2/requests/{case_id}/updates.json")):
        response = getattr(client.http, method)(path)
        assert response.status_code == 403, (path, response.data)
        assert case_id not in response.get_data(as_text=True)


def test_anonymous_gets_nothing(sweep):
    client = DashClient(sweep["app"].server.test_client())
    assert client.http.get("/_dash-layout").status_code == 401
    assert client.http.get("/_dash-dependencies").status_code == 401
    assert client.callbacks() == []
    for path in ("/", "/street?unit=440103001000", "/case/X", "/admin"):
        response = client.http.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    for kind in ("cases.csv", "cases.xlsx", "map.html", "report.docx"):
        assert client.http.get(f"/download/city/{kind}").status_code == 401
    assert client.http.get("/exports/anything").status_code == 401
    body = {"output": "city-kpis.children", "outputs": {"id": "city-kpis", "property": "children"},
            "inputs": [{"id": "view-query", "property": "data",
                        "value": {"page": "city", "search": ""}}], "changedPropIds": []}
    answer = client.post_body(body)
    assert answer.status_code in (400, 401) and b"kpi" not in answer.data  # CSRF, then login


@pytest.mark.parametrize("role", ["grid_worker", "street", "district", "city"])
def test_a_role_sees_nothing_outside_its_scope(sweep, role):
    account = sweep["accounts"][role]
    scope = account.scope
    client = DashClient(sweep["app"].server.test_client())
    assert client.login(account.username, sweep["password"]).status_code == 302
    # B is copied after login, so the session is in it too
    store_b = _without_outside(sweep, scope, role) if scope.level != "city" else None
    callbacks = {cb.name: cb for cb in client.callbacks()}
    by_name: dict[str, list] = {}
    for cb in client.callbacks():
        by_name.setdefault(cb.name, []).append(cb)
    inside_case, outside_case = _cases(sweep["a"], scope)
    refused_before = _refusals(sweep["a"])
    seq_before = int(audit.read_trail(sweep["a"].engine)["seq"].max())
    expected_refusals = 0
    seen_contact = []

    def both(call) -> tuple:  # noqa: ANN001 - the request, as a function of nothing
        first = call()
        first.get_data()  # a streamed body is read before the next request
        first.close()
        if store_b is None:  # the city holds every case: nothing to take away
            return first, first
        with serving(sweep["app"], store_b):
            second = call()
            second.get_data()
            second.close()
        return first, second

    def check_inside(call, label: str) -> None:
        a, b = both(call)
        assert a.status_code == 200, (label, a.status_code, a.get_data(as_text=True)[:300])
        if _normalised(a) != _normalised(b):
            ta, tb = _normalised(a)[1], _normalised(b)[1]
            i = next(i for i in range(min(len(ta), len(tb))) if ta[i] != tb[i])
            raise AssertionError(f"{role}: {label} depends on cases outside: "
                                 f"...{ta[max(0, i - 200):i + 100]}... vs ...{tb[i:i + 100]}...")
        _assert_no_contact(a, sweep["contacts"], label)

    def check_outside(call, label: str) -> None:
        nonlocal expected_refusals
        response = call()
        text = response.get_data(as_text=True)
        response.close()
        assert response.status_code == 403 or (response.status_code == 200
                                                and "refused-message" in text), (label, text[:300])
        assert len(text) < 3000, f"{label}: a refusal carries data"
        _assert_no_contact(response, sweep["contacts"], label)
        expected_refusals += 1

    queries = _queries(scope)
    for page, unit, crafted in queries:
        query = {"page": page, "search": f"?unit={unit}",
                 "scope": crafted or unit, "unit": crafted or unit}
        inside = _page_inside(scope, page, unit)
        for name in sorted(QUERY_CALLBACKS):
            own = OWN_PAGE.get(name, page)
            if own != page and _page_inside(scope, own, unit):
                continue  # another page's callback inside the scope: its own page covers it
            cb = callbacks[name]
            values = {"view-query.data": query, "city-trend-rate.value": "satisfaction"}
            call = partial(client.call, cb, values)
            label = f"{name} {page} {unit} crafted={crafted}"
            (check_inside if _page_inside(scope, own, unit) else check_outside)(call, label)
        if page == "street":  # 待更正落格: its list and choices inside, every write refused
            queued = _queued_case(sweep["a"], unit)
            may = inside and scope.can_correct
            check = check_inside if may else check_outside
            check(partial(client.call, callbacks["street-placement.children"],
                          {"view-query.data": query}), f"placement list {unit}")
            check(partial(client.call, callbacks["placement-village.options"],
                          {"view-query.data": query, "placement-case.value": queued},
                          ["placement-case.value"]), f"placement choices {unit} {queued}")
            if outside_case is not None:
                check_outside(partial(client.call, callbacks["placement-village.options"],
                                      {"view-query.data": query,
                                       "placement-case.value": outside_case},
                                      ["placement-case.value"]), f"choices {outside_case}")
            for case_id, village in ((outside_case, "440103001001"),
                                     (queued, "440104002201")):
                if case_id is None:
                    continue
                values = {"placement-submit.n_clicks": 1, "placement-case.value": case_id,
                          "placement-village.value": village, "placement-note.value": "sweep",
                          "view-query.data": query}
                check_outside(partial(client.call, callbacks["placement-result.children"],
                                      values, ["placement-submit.n_clicks"]),
                              f"correct {case_id} → {village} on {unit}")
        # the page router renders the page for a URL
        router = callbacks["_pages_content.children"]
        call = partial(client.call, router, {"_pages_location.pathname": PATHS[page],
                                             "_pages_location.search": f"?unit={unit}"})
        (check_inside if inside else check_outside)(call, f"page {page} {unit}")
        # downloads, as a link names them
        for kind in ("cases.csv", "cases.xlsx", "map.html", "report.docx"):
            if page != "city" and unit == CITY:
                continue
            call = partial(client.http.get, f"/download/{page}/{kind}?unit={unit}")
            if inside and _page_unit(page, unit) and kind != "cases.xlsx":
                # the workbook holds the CSV's rows (layers.exports.export_frames), and writing
                # and reading it takes seconds: inside the scope the CSV stands for both
                check_inside(call, f"download {page} {kind} {unit}")
            elif not inside:
                check_outside(call, f"download {page} {kind} {unit}")
    # 同比/环比 on the cards and the ranking: a dated view compares with the month before
    if scope.level in ("city", "district"):
        dated = {"page": "city", "search": f"?unit={scope.code}&from=2025-05-01&to=2025-05-31"}
        check_inside(partial(client.call, callbacks["city-kpis.children"],
                             {"view-query.data": dated}), "kpis with 环比")
    # a click on the map, a pick in the picker: write a URL only inside the scope
    home_query = {"page": PAGE_OF[scope.level], "search": f"?unit={scope.code}"}
    for unit in UNITS:
        for cb, values, trigger in (  # (a unit on the map is entered by its URL: the router)
                (_with_input(by_name["view-nav.data"], "unit-picker"),
                 {"unit-picker.value": unit, "view-query.data": home_query},
                 ["unit-picker.value"]),
                (_with_input(by_name["url.search"], "warn-unit-picker"),
                 {"warn-unit-picker.value": unit}, ["warn-unit-picker.value"])):
            call = partial(client.call, cb, values, trigger)
            if scope.allows_unit(unit):
                check_inside(call, f"{cb.name} {unit}")
            else:
                check_outside(call, f"{cb.name} {unit}")
    # a click on a ranking row of 领导视图 (offered where the account may open that view)
    ranking_cb = _with_input(by_name["city-ranking-pick.data"], "city-ranking")
    leaders = _page_inside(scope, "city", scope.code)
    for unit in UNITS:
        call = partial(client.call, ranking_cb, {
            "city-ranking.cellClicked": {"rowId": unit, "colId": "name"},
            "view-query.data": {"page": "city", "search": f"?unit={scope.code}"}},
            ["city-ranking.cellClicked"])
        (check_inside if leaders and scope.allows_unit(unit) else check_outside)(
            call, f"ranking row {unit}")
    preset_cb = _with_input(by_name["view-nav.data"], "map-preset-density")
    check_inside(lambda: client.call(preset_cb, {"map-preset-density.n_clicks": 1,
                                                 "view-query.data": home_query},
                                     ["map-preset-density.n_clicks"]), "preset")
    date_preset = _with_input(by_name["view-nav.data"], "flt-preset-last_month")
    check_inside(lambda: client.call(date_preset, {"flt-preset-last_month.n_clicks": 1,
                                                   "view-query.data": home_query},
                                     ["flt-preset-last_month.n_clicks"]), "date preset")
    note = callbacks["flt-dates-note.children"]
    for dates in (("2025-05-01", "2025-06-30"), ("2025-06-30", "2025-01-01"), (None, None)):
        check_inside(lambda dates=dates: client.call(note, {
            "flt-dates.start_date": dates[0], "flt-dates.end_date": dates[1],
            "view-query.data": home_query}), f"date note {dates}")
    # 我的导出: a background export of the own area arrives, the same as from a store without
    # the cases outside; one of a unit outside is refused; nobody else's job is ever sent
    start_cb, list_cb = callbacks["my-exports-tick.data"], callbacks["my-exports-list.children"]

    def background(query: dict):  # noqa: ANN202 - the finished file's response, or the refusal
        answer = client.call(start_cb, {"my-exports-request.data": {
            "kind": "cases.csv", "query": query, "at": 1}})
        if answer.status_code != 200:
            return answer
        job = answer.get_json()["response"]["my-exports-tick"]["data"]
        for _ in range(600):
            response = client.http.get(f"/exports/{job}")
            if response.status_code != 202:
                return response
            time.sleep(0.05)
        raise AssertionError(f"export {job} did not finish")

    export_query = {"page": PAGE_OF[scope.level], "search": f"?unit={scope.code}"}
    if scope.level != "village":  # the grid worker's own page is the village view
        check_inside(partial(background, export_query), "background export")
        listed = client.call(list_cb, {"my-exports-tick.data": "x"})
        assert listed.status_code == 200 and "我的导出" in listed.get_data(as_text=True)
        _assert_no_contact(listed, sweep["contacts"], "my exports list")
    outside_unit = next((u for u in UNITS if not scope.allows_unit(u)), None)
    if outside_unit:
        check_outside(partial(background, {"page": PAGE_OF[_level(outside_unit)],
                                           "search": f"?unit={outside_unit}"}),
                      "background export outside")
    assert client.http.get("/exports/not-a-job").status_code == 404
    stranger = DashClient(sweep["app"].server.test_client())
    stranger.login(account.username, sweep["password"])  # the same account, another session
    own_jobs = sweep["app"].server.config["GRIDGOV_EXPORT_JOBS"].of(
        (account.id, _export_token(client)))
    assert own_jobs or scope.level == "village"
    for job in own_jobs:
        assert stranger.http.get(f"/exports/{job.id}").status_code == 404
    if scope.level != "city":  # a malformed unit reads as the city
        check_outside(lambda: client.call(preset_cb, {"map-preset-density.n_clicks": 1,
                                                      "view-query.data": {"page": "city",
                                                                          "search": "?unit=1"}},
                                          ["map-preset-density.n_clicks"]), "preset bad unit")
    # the 预警 page: its list, map and 显微镜 for units in and out of scope, its CSV, one warning
    # inside and one outside opened and moved to another state
    for unit in UNITS:
        query = {"unit": unit, "id": None}
        for name in ("warn-grid.rowData", "warn-map-hot.data", "warn-microscope.children"):
            cb = callbacks[name]
            values = {"warn-query.data": query, "warn-level.value": "", "warn-saved.data": 0}
            call = partial(client.call, cb, values)
            (check_inside if scope.allows_unit(unit) else check_outside)(
                call, f"{name} {unit}")
        call = partial(client.http.get, f"/download/warnings.csv?unit={unit}")
        (check_inside if scope.allows_unit(unit) else check_outside)(call, f"warnings.csv {unit}")
        page = partial(client.call, callbacks["_pages_content.children"],
                       {"_pages_location.pathname": "/warnings",
                        "_pages_location.search": f"?unit={unit}"})
        (check_inside if scope.allows_unit(unit) else check_outside)(page, f"预警页 {unit}")
    own_warning, other_warning = _warnings(sweep["a"], scope)
    home = {"unit": scope.code, "id": None}
    for warning_id, inside in ((own_warning, True), (other_warning, False)):
        if warning_id is None:
            continue
        detail = callbacks["warn-detail.children"]
        answer = client.call(detail, {"warn-selected.data": warning_id, "warn-saved.data": 0,
                                      "warn-query.data": home})
        text = answer.get_data(as_text=True)
        assert answer.status_code == 200 and ("warn-case" in text or "未找到" in text)
        assert ("未找到该预警" in text) != inside, (role, warning_id, inside)
        save = callbacks["warn-saved.data"]
        values = {"warn-save.n_clicks": 1, "warn-selected.data": warning_id,
                  "warn-next-state.value": "seen", "warn-note.value": "sweep",
                  "warn-query.data": home, "warn-saved.data": 0}
        answer = client.call(save, values, ["warn-save.n_clicks"])
        assert answer.status_code == 200
        assert ("已改为" in answer.get_data(as_text=True)) == inside, (role, warning_id)
        outside_query = {"unit": next(u for u in UNITS if not scope.allows_unit(u)), "id": None} \
            if scope.level != "city" else None
        if outside_query:
            check_outside(partial(client.call, save, {**values, "warn-query.data":
                                                      outside_query}, ["warn-save.n_clicks"]),
                          f"warning state outside {warning_id}")
    select = callbacks["warn-selected.data"]
    assert client.call(select, {"warn-grid.cellClicked": {"rowId": "<x>"}},
                       ["warn-grid.cellClicked"]).status_code in (200, 204)
    # case pages and reveals: inside opens (and reveals where the role may), outside refused
    router = callbacks["_pages_content.children"]
    reveal = callbacks["case-reveal-result.children"]
    for case_id, inside in ((inside_case, True), (outside_case, False)):
        if case_id is None:
            continue
        page_call = partial(client.call, router, {"_pages_location.pathname": f"/case/{case_id}",
                                                  "_pages_location.search": ""})
        values = {"case-reveal.n_clicks": 1, "case-reveal-reason.value": "followup",
                  "case-current.data": case_id}
        reveal_call = partial(client.call, reveal, values, ["case-reveal.n_clicks"])
        if inside:
            check_inside(page_call, f"case {case_id}")
            answer = reveal_call()
            if scope.can_reveal:
                assert answer.status_code == 200
                name, phone = sweep["contacts"]["by_case"][case_id]
                text = answer.get_data(as_text=True)
                assert phone in text and name in text
                seen_contact.append(case_id)
            else:
                assert answer.status_code == 403
                expected_refusals += 1
        else:
            check_outside(page_call, f"case {case_id}")
            check_outside(reveal_call, f"reveal {case_id}")
    # crafted bodies: no query, a wrong type, a made-up page, a missing reason
    kpis = callbacks["city-kpis.children"]
    for bad in (None, "?unit=440100000000", {"page": "nowhere", "search": ""},
                {"page": "city", "search": ["?unit=440100000000"]}, {"search": "?unit=1"}):
        a, b = both(lambda bad=bad: client.call(kpis, {"view-query.data": bad}))
        assert a.status_code in (200, 400, 403, 404), (bad, a.status_code)
        assert b"Traceback" not in a.data
        if a.status_code == 200:  # read as the page's own query: still nothing from outside
            assert _normalised(a) == _normalised(b), bad
    assert client.call(reveal, {"case-reveal.n_clicks": 1, "case-current.data": inside_case},
                       ["case-reveal.n_clicks"]).status_code in (200, 403)
    # every refusal is on record, with the user's name
    trail = audit.read_trail(sweep["a"].engine)
    refused = trail[(trail["action"] == "refused") & (trail["username"] == account.username)]
    assert len(refused) - refused_before.get(account.username, 0) >= expected_refusals
    reveals = trail[(trail["action"] == "reveal") & (trail["username"] == account.username)
                    & (trail["seq"] > seq_before)]
    assert sorted(reveals["case_ids"]) == sorted(seen_contact)
    assert audit.verify(sweep["a"].engine).ok


def test_an_administrator_without_scope_sees_no_case_data(sweep):
    account = sweep["accounts"]["admin"]
    client = DashClient(sweep["app"].server.test_client())
    response = client.login(account.username, sweep["password"])
    assert response.headers["Location"] == "/admin"
    for cb in client.callbacks():
        if cb.name in QUERY_CALLBACKS:
            answer = client.call(cb, {"view-query.data": {"page": "city", "search": ""}})
            assert answer.status_code == 403, cb.name
    router = next(cb for cb in client.callbacks() if cb.name == "_pages_content.children")
    page = client.call(router, {"_pages_location.pathname": "/admin",
                                "_pages_location.search": ""}).get_data(as_text=True)
    assert "admin-audit" in page and "admin-accounts" in page
    _assert_no_contact_text(page, sweep["contacts"], "admin page")
    assert client.http.get("/download/city/cases.csv").status_code == 403
    other = DashClient(sweep["app"].server.test_client())
    other.login("demo-street", sweep["password"])
    router_other = next(cb for cb in other.callbacks() if cb.name == "_pages_content.children")
    refused = other.call(router_other, {"_pages_location.pathname": "/admin",
                                        "_pages_location.search": ""}).get_data(as_text=True)
    assert "refused-message" in refused and "admin-audit" not in refused


# --------------------------------------------------------------------------- helpers


def _export_token(client: DashClient) -> str:
    """The session's 我的导出 owner token: its login session's (flask-login keeps it)."""
    with client.http.session_transaction() as session:
        return session.get("_user_id", "")


def _queries(scope: Scope) -> list[tuple[str, str, str | None]]:
    """(page, unit, crafted scope) triples: each unit on its own page, plus crafted stores."""
    out = [(PAGE_OF[_level(u)], u, None) for u in UNITS]
    out.append(("city", "440103001001", None))       # a village on the leaders' page
    out.append(("street", "440103001001", None))     # a village chosen in the street view
    outside = next((u for u in UNITS if _level(u) == scope.level and not scope.allows_unit(u)),
                   None)  # a unit like the scope's own, outside it
    if outside:  # an honest search with a lying scope field: the field is ignored
        out.append((PAGE_OF[scope.level if scope.level != "district" else "district"],
                    scope.code, outside))
    return out


def _page_inside(scope: Scope, page: str, unit: str) -> bool:
    from dashboard.shell import scope_for

    computed = scope_for(page, unit)
    return scope.allows_unit(unit) and (computed is None or scope.allows_unit(computed))


def _page_unit(page: str, unit: str) -> bool:
    from dashboard.shell import scope_for

    return scope_for(page, unit) is not None


def _level(code: str) -> str:
    from geo.codes import level_of

    return level_of(code)


def _with_input(callbacks: list, component: str):
    return next(cb for cb in callbacks if any(i["id"] == component for i in cb.inputs))


def _cases(store: Store, scope: Scope) -> tuple[str | None, str | None]:
    table = case_table(store)
    inside = scope_mask(store, scope)
    ids = np.asarray(table.case_id, dtype=object)
    return (str(ids[inside][0]) if inside.any() else None,
            str(ids[~inside][0]) if (~inside).any() else None)


def _queued_case(store: Store, street: str) -> str | None:
    """A case of the street that its address placed only to the street (None: none there)."""
    from geo.codes import level_of
    from layers.placement import street_level_rows

    if level_of(street) != "street":
        return None
    rows = street_level_rows(store, street)
    return str(case_table(store).case_id[rows[0]]) if len(rows) else None


def _warnings(store: Store, scope: Scope) -> tuple[str | None, str | None]:
    """One new warning inside the scope and one outside (None when there is none)."""
    from geo.scope import unit_within

    t = schema.warning.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.warning_id, t.unit_code).where(
            t.state == "new", t.active.is_(True)).order_by(t.warning_id)).all()
    inside = next((w for w, u in rows if scope.allows_unit(u)), None)
    outside = next((w for w, u in rows if not unit_within(u, scope.code)), None)
    return inside, outside


def _refusals(store: Store) -> dict[str, int]:
    trail = audit.read_trail(store.engine)
    return trail[trail["action"] == "refused"].groupby("username").size().to_dict()


def _copy(source: str, target) -> None:  # noqa: ANN001 - a path
    src, dst = sqlite3.connect(source), sqlite3.connect(str(target))
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _pin_as_of(store: Store, village: str) -> None:
    """Give one case of ``village`` the latest timestamp, so every scope shares the as-of time."""
    table = case_table(store)
    latest = table_as_of(table)
    case_id = str(np.asarray(table.case_id, dtype=object)[table.in_unit(village)][0])
    c = schema.cases.c
    with store.engine.begin() as conn:
        conn.execute(schema.cases.update().where(c.case_id == case_id).values(
            transferred_at=latest - timedelta(seconds=0)))
        bump_version(conn)
    assert table_as_of(case_table(store)) == latest


def _without_outside(sweep, scope: Scope, role: str) -> Store:
    """Store B: a copy of A holding only the cases inside ``scope``."""
    path = sweep["folder"] / f"b-{role}.db"
    _copy(str(sweep["a_path"]), path)
    engine = make_engine(f"sqlite:///{path}")
    table = case_table(sweep["a"])
    outside = [str(v) for v in np.asarray(table.case_id, dtype=object)[
        ~scope_mask(sweep["a"], scope)]]
    with engine.begin() as conn:
        for start in range(0, len(outside), 500):
            batch = outside[start:start + 500]
            conn.execute(schema.case_event.delete().where(schema.case_event.c.case_id.in_(batch)))
            conn.execute(schema.cases.delete().where(schema.cases.c.case_id.in_(batch)))
        bump_version(conn)
    return Store(engine, APP_SETTINGS)


def _contacts(engine) -> dict:
    """Every petitioner name (2+ characters) and phone in the store, and each case's pair."""
    c = schema.cases.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.case_id, c.petitioner_name, c.petitioner_phone)).all()
        staff = set(conn.execute(sa.select(c.backlog_leader).distinct()).scalars()) | set(
            conn.execute(sa.select(c.handling_unit).distinct()).scalars())
    staff_text = "\n".join(str(v) for v in staff if v)
    names = {r[1] for r in rows if r[1] and len(r[1]) >= 2 and r[1] not in staff_text}
    phones = {r[2] for r in rows if r[2] and len(r[2]) >= 7}
    return {"names": names, "phones": phones,
            "by_case": {r[0]: (r[1] or "", r[2] or "") for r in rows}}


def _assert_no_contact(response, contacts: dict, label: str) -> None:
    data = response.data
    if response.mimetype and "wordprocessingml" in response.mimetype:
        text = str(_normalised(response)[1])
    elif response.mimetype and "sheet" in response.mimetype:
        frames = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str)
        text = "\n".join(f.to_csv(index=False) for f in frames.values())
    else:
        text = data.decode("utf-8", errors="replace")
    _assert_no_contact_text(text, contacts, label)


def _assert_no_contact_text(text: str, contacts: dict, label: str) -> None:
    decoded = text
    if "\\u" in text:
        decoded = json.loads(json.dumps(text).replace("\\\\u", "\\u"))
    digits = set(re.findall(r"\d{7,}", decoded))
    assert not digits & contacts["phones"], f"{label}: an unmasked phone number"
    found = [n for n in contacts["names"] if n in decoded]
    assert not found, f"{label}: unmasked petitioner names {found[:3]}: " + " | ".join(
        decoded[max(0, decoded.index(n) - 60):decoded.index(n) + 20] for n in found[:2])


def _normalised(response) -> object:
    """What must be equal between stores: the status and the content (files parsed)."""
    mimetype = response.mimetype or ""
    if "wordprocessingml" in mimetype:  # the 月报: its text (the zip carries write times)
        from docx import Document

        document = Document(io.BytesIO(response.data))
        text = "\n".join([p.text for p in document.paragraphs] + [
            cell.text for table in document.tables for row in table.rows for cell in row.cells])
        return response.status_code, re.sub(r"生成时间：.*", "", text)
    if "sheet" in mimetype:
        frames = pd.read_excel(io.BytesIO(response.data), sheet_name=None, dtype=str)
        return response.status_code, {k: v.to_dict("list") for k, v in frames.items()}
    text = response.get_data(as_text=True)
    if mimetype == "text/html":
        text = re.sub(r"[0-9a-f]{32}", "ID", text)  # folium's element ids are random
    return response.status_code, text
