"""The dashboard in a real headless Chromium, on the tiny grid with 2,000 demo cases.

What a user does: open each view, click a district on the map to drill down, narrow the
cases with a filter and see the table and the map follow, download the case table (Excel
and CSV, personal fields masked) and the map (standalone HTML).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.dashboard.conftest import POLL_S, click_css

pytestmark = pytest.mark.browser

DISTRICT_NAMES = {"440103000000": "甲区", "440104000000": "乙区"}
VIEWS = [
    ("/", "#city-ranking .ag-row"),
    ("/street?unit=440103001000", "#street-villages"),
    ("/village?unit=440103001001", ".case-item"),
]


def test_each_view_loads_without_console_errors(browser, live_url):
    for path, ready in VIEWS:
        browser.get_log("browser")  # drop what came before
        browser.get(live_url + path)
        _wait_css(browser, ready)
        _wait_css(browser, "path.leaflet-interactive")
        time.sleep(0.5)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], f"{path}: {errors}"
        assert "演示数据" in browser.find_element("css selector", ".data-label").text
        twice = browser.execute_script(
            "var seen = {}, twice = [];"
            "document.querySelectorAll('[id]').forEach(function (e) {"
            "  if (seen[e.id]) { twice.push(e.id); } seen[e.id] = true; });"
            "return twice;")
        assert twice == [], f"{path}: ids used by two elements {twice}"


def test_click_a_district_on_the_map_drills_down(browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, ".kpi")
    districts = _wait_count(browser, "path.leaflet-interactive", 2)
    districts[0].click()  # a popup with the district's numbers and 进入, not a drill at once
    popup = _wait(browser, lambda d: next((e for e in d.find_elements(
        "css selector", ".unit-popup") if "按期办结率" in e.text), False))  # once shown
    assert "unit=" not in browser.current_url
    popup.find_element("css selector", ".btn-enter").click()
    _wait(browser, lambda d: "unit=" in d.current_url)
    code = re.search(r"unit=(\d{12})", browser.current_url).group(1)
    assert code in DISTRICT_NAMES
    _wait(browser, lambda d: _text(d, ".crumb.current") == DISTRICT_NAMES[code])
    assert "镇街" in _text(browser, "#city-ranking-title")
    # the map now shows that district's two streets; the breadcrumb leads back to the city
    _wait_count(browser, "path.leaflet-interactive", 2)
    crumbs = browser.find_elements("css selector", "a.crumb")
    assert [c.text for c in crumbs] == ["全市"]
    crumbs[0].click()
    _wait(browser, lambda d: "unit=" not in d.current_url)
    _wait(browser, lambda d: _text(d, ".crumb.current") == "全市")


def test_a_filter_changes_the_table_and_the_map(browser, live_url):
    browser.get(live_url + "/?unit=440103000000")
    _wait_css(browser, ".ag-row [col-id='cases']")
    before_note = _map_total(browser)
    before_rows = _column(browser, "cases")
    assert before_note == sum(before_rows) > 0

    browser.find_element("id", "flt-status").click()
    option = _wait_css(browser, "input.dash-options-list-option-checkbox[value='closed']")
    option.find_element("xpath", "./ancestor::label").click()
    _wait(browser, lambda d: "status=closed" in d.current_url)
    _wait(browser, lambda d: _map_total(d) not in (None, before_note))
    after_note = _map_total(browser)
    _wait(browser, lambda d: sum(_column(d, "cases")) == after_note)
    assert 0 < after_note < before_note
    assert _column(browser, "cases") != before_rows


def test_quick_layer_shows_station_coverage(browser, live_url):
    browser.get(live_url + "/?unit=440103000000")
    before = len(_wait_count_at_least(browser, "path.leaflet-interactive", 2))
    _wait_css(browser, "#map-preset-coverage").click()
    _wait(browser, lambda d: "metric=covered_pop_share" in d.current_url
          and "show=stations" in d.current_url and "show=catchments" in d.current_url)
    # station markers and their catchment circles join the two street polygons
    _wait(browser, lambda d: len(d.find_elements("css selector", "path.leaflet-interactive"))
          > before)
    assert "覆盖人口占比" in _text(browser, ".legend-title")


def test_a_filter_that_leaves_no_cases_says_so(browser, live_url):
    browser.get_log("browser")
    browser.get(live_url + "/?from=2025-06-30&to=2025-06-30&status=overdue")  # none yet
    message = _wait_css(browser, ".empty-message")
    assert "没有案件" in message.text
    _wait(browser, lambda d: _map_total(d) == 0)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_street_picker_opens_the_chosen_street(browser, live_url):
    browser.get(live_url + "/street?unit=440104000000")
    _wait_css(browser, "#unit-picker").click()
    option = _wait(browser, lambda d: [o for o in d.find_elements(
        "css selector", ".dash-dropdown-option") if "乙二街道" in o.text][0])
    option.click()
    _wait(browser, lambda d: "unit=440104002000" in d.current_url)
    _wait(browser, lambda d: _text(d, ".crumb.current") == "乙二街道")
    _wait_css(browser, "#street-villages")


def test_downloads_are_masked_and_complete(browser, live_url, download_dir: Path):
    browser.get(live_url + "/?unit=440103000000")
    _wait_css(browser, ".ag-row [col-id='cases']")
    _wait(browser, lambda d: _map_total(d) is not None)
    total = _map_total(browser)

    click_css(browser, "#exp-csv")
    csv = pd.read_csv(_wait_file(download_dir, ".csv"), dtype=str)
    assert len(csv) == total
    assert "petitioner_id_hash" not in csv and "信访件编号" in csv
    names = csv["信访人"].dropna()
    assert len(names) and names.str.fullmatch(r".\*+").all()
    phones = csv["联系电话"].dropna()
    assert len(phones) and phones.str.fullmatch(r"\d{0,3}\*+\d{4}").all()
    assert set(csv["区代码"].dropna()) == {"440103000000"}

    click_css(browser, "#exp-xlsx")
    xlsx = pd.read_excel(_wait_file(download_dir, ".xlsx"), sheet_name="案件", dtype=str)
    assert len(xlsx) == total
    assert xlsx["信访人"].dropna().str.fullmatch(r".\*+").all()

    click_css(browser, "#exp-html")
    exported = _wait_file(download_dir, ".html")
    page = exported.read_text(encoding="utf-8")
    assert _shows(page, "甲一街道") and _shows(page, "甲镇")  # the units of 甲区
    assert _shows(page, "按期办结率") and "leaflet" in page.lower()
    # the file opens on its own (no server, no internet): Leaflet runs and draws the layer
    browser.get_log("browser")
    browser.get(exported.resolve().as_uri())
    _wait_css(browser, ".leaflet-overlay-pane path.leaflet-interactive")  # the units, drawn
    assert "按期办结率" in browser.find_element("css selector", "body").text  # the legend
    legend = browser.find_element("css selector", "#legend").text
    assert "范围：甲区（区）" in legend and "筛选条件：无（全部案件）" in legend
    assert "数据截至：2025-06-30" in legend
    scale = browser.find_element("css selector", ".leaflet-control-scale-line")
    assert re.fullmatch(r"\d+ k?m", scale.text), scale.text  # metres, never feet
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


# --------------------------------------------------------------------------- helpers


def _wait(browser, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=POLL_S,
                         ignored_exceptions=(Exception,)).until(condition)


def _wait_css(browser, selector: str):
    return _wait(browser, lambda d: d.find_element("css selector", selector))


def _wait_text(browser, selector: str) -> str:
    """The text of ``selector`` once it is there, read again if a re-render made it stale."""
    return _wait(browser, lambda d: (d.find_element("css selector", selector).text,))[0]


def _wait_count(browser, selector: str, n: int):
    return _wait(browser, lambda d: (lambda els: els if len(els) == n else False)(
        d.find_elements("css selector", selector)))


def _wait_count_at_least(browser, selector: str, n: int):
    return _wait(browser, lambda d: (lambda els: els if len(els) >= n else False)(
        d.find_elements("css selector", selector)))


def _text(browser, selector: str) -> str:
    return browser.find_element("css selector", selector).text.strip()


def _map_total(browser) -> int | None:
    match = re.search(r"图中各单位合计 ([\d,]+) 件", _text(browser, "#map-note"))
    return int(match.group(1).replace(",", "")) if match else None


def _column(browser, col_id: str) -> list[int]:
    cells = browser.find_elements("css selector", f".ag-center-cols-container [col-id='{col_id}']")
    return [int(c.text.replace(",", "")) for c in cells if c.text.strip()]


def _shows(page: str, text: str) -> bool:
    """True when ``text`` is in the page, as is or JSON-escaped (\\uXXXX)."""
    return text in page or json.dumps(text)[1:-1] in page


def _wait_file(folder: Path, suffix: str, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done and not any(p.name.endswith(".crdownload") for p in folder.iterdir()):
            return max(done, key=lambda p: p.stat().st_mtime)
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} download in {folder}: {list(folder.iterdir())}")


def test_definitions_page_shows_the_same_text_as_docs(browser, live_url):
    from layers.definitions import METRICS

    browser.get(live_url + "/")
    _wait_css(browser, ".kpi")
    browser.find_element("css selector", "a.nav-help").click()
    _wait_css(browser, "#definitions-table")
    row = browser.find_element("css selector", "#def-on_time_completion")
    assert METRICS["on_time_completion"].formula_zh in row.text
    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert METRICS["on_time_completion"].formula_zh in docs
    rows = browser.find_elements("css selector", "#definitions-table tbody tr")
    assert len(rows) == len(METRICS)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
