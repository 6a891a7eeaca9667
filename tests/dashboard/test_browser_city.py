"""The city leader's view on the real grid: maps that say something, 同比 on a card.

The session's demo store has two districts (tests/grids.py), too few to show whether a map
tells eleven districts apart, and one year of cases, too short for 同比. This module builds a
second demo store on the bundled Guangzhou grid (11 districts) with two years of cases (the
demo of 2023-07…2024-06, then the demo of 2024-07…2025-06 on top: a case id carries its
registration day, so the two never collide), serves it from the session's app for the module
and logs the browser in to it through the real login page.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from dashboard.components import M_METRIC
from dashboard.query import MAP_METRICS
from layers.definitions import METRICS
from layers.metrics import RATES
from layers.style import NO_DATA_COLOUR
from tests.conftest import run_cli
from tests.dashboard.conftest import APP_SETTINGS, login
from tests.dashboard.stores import serving
from tests.dashboard.test_browser import _text, _wait, _wait_css

pytestmark = pytest.mark.browser

CASES_PER_YEAR = 5_000
"""Enough that every district's rates rest on more than the minimum number of cases."""


@pytest.fixture(scope="module")
def city_store(tmp_path_factory):
    """Real grid, demo stations, two years of demo cases as of 2025-06-30, demo accounts."""
    from etl.demo import build_demo
    from geo.accounts import create_demo_accounts
    from geo.store import Store, make_engine

    path = tmp_path_factory.mktemp("city") / "store.db"
    store = Store(make_engine(f"sqlite:///{path}"), APP_SETTINGS)
    build_demo(store, n_cases=CASES_PER_YEAR, seed=11, as_of=date(2024, 6, 30))
    build_demo(store, n_cases=CASES_PER_YEAR, seed=7, as_of=date(2025, 6, 30))
    password, _accounts = create_demo_accounts(store.engine, settings=APP_SETTINGS)
    yield store, password
    store.engine.dispose()


@pytest.fixture(scope="module")
def city_browser(chromium, live_url, dash_app, city_store):
    """The browser logged in as the city account of the real-grid store, served for the module."""
    store, password = city_store
    with serving(dash_app, store):
        login(chromium, live_url, "demo-city", password)
        assert chromium.gridgov_user == "demo-city"
        yield chromium
        chromium.gridgov_user = None  # the next test logs in to the session's store again


def _district_fills(browser) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll("
        "'.leaflet-overlay-pane path.leaflet-interactive')).map(p => p.getAttribute('fill'));")


def test_every_rate_map_of_the_city_tells_districts_apart(city_browser, live_url):
    city_browser.get(f"{live_url}/")
    _wait_css(city_browser, "path.leaflet-interactive")
    for rate in (m for m in MAP_METRICS if m in RATES):
        # as choosing it in the 地图指标 menu does: the dropdown's value, through Dash
        city_browser.execute_script(
            "dash_clientside.set_props(arguments[0], {value: arguments[1]})", M_METRIC, rate)
        _wait(city_browser, lambda d, r=rate: METRICS[r].label_zh in _text(d, "#map-legend"))
        fills = _wait(city_browser, lambda d: (lambda shown: shown if len(shown) == 11 else False)(
            _district_fills(d)))
        classes = {fill for fill in fills if fill and fill.lower() != NO_DATA_COLOUR}
        assert len(classes) >= 3, (rate, fills)


def test_a_card_s_yoy_and_mom_equal_the_metric_of_the_shifted_periods(city_browser, live_url,
                                                                      city_store):
    store, _password = city_store
    city_browser.get(live_url + "/?from=2025-05-01&to=2025-05-31")
    card = _wait(city_browser, lambda d: next(
        (c for c in d.find_elements("css selector", "#city-kpis .kpi")
         if "按期办结率" in c.text and "同比" in c.text and "环比" in c.text), False))

    def shown(kind: str) -> float:
        found = re.search(kind + r" ([+−-]?[\d.]+) 个百分点", card.text)
        assert found, card.text
        return float(found.group(1).replace("−", "-"))

    def city(first: str, last: str) -> float:
        out = run_cli(store.engine, ["metrics", "--level", "district", "--from", first,
                                     "--to", last, "--format", "json"])
        return next(r for r in json.loads(out.stdout)
                    if r["row_type"] == "city")["on_time_completion"]

    may = city("2025-05-01", "2025-05-31")
    assert shown("同比") == round(100 * (may - city("2024-05-01", "2024-05-31")), 1)
    assert shown("环比") == round(100 * (may - city("2025-04-01", "2025-04-30")), 1)
