"""What a clerk sees when something is wrong: bad links, dates outside the data, no server.

One server and one Chromium for the module (tests/dashboard/conftest.py); no fixed sleeps.
"""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import click_css
from tests.dashboard.test_browser import _text, _wait, _wait_css, _wait_text

pytestmark = pytest.mark.browser


def _severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize(("search", "says"), [
    ("?metric=bogus", "未知的地图指标“bogus”"),
    ("?from=2027-01-01", "开始日期 2027-01-01 晚于数据的最后一天"),
])
def test_a_bad_link_shows_a_message_and_the_nearest_view(browser, live_url, search, says):
    browser.get_log("browser")
    browser.get(live_url + "/" + search)
    assert says in _wait_text(browser, "#param-notice")
    _wait(browser, lambda d: len(d.find_elements("css selector", ".kpi")) > 3)
    _wait_css(browser, "path.leaflet-interactive")
    assert "—" not in _text(browser, ".kpi .kpi-value")  # the cards have numbers
    assert _severe(browser) == []  # no callback failed


def test_a_banner_while_the_server_cannot_be_reached_and_recovery_without_reload(
        browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, "#city-trend .bars")  # the trend is drawn
    browser.execute_script("window.gridgovMarker = 1;")  # gone if the page reloads
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    try:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
        radio = browser.find_element("css selector", "#city-trend-rate input[value='repeat']")
        radio.click()
        banner = _wait_css(browser, "#connection-banner")
        assert "无法连接服务器" in banner.text
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    _wait(browser, lambda d: not d.find_elements("css selector", "#connection-banner"))
    _wait(browser, lambda d: "重复信访率" in _text(d, "#city-trend .legend"))
    assert browser.execute_script("return window.gridgovMarker") == 1
    browser.get_log("browser")  # the offline failures were logged by Chromium itself


def _type_date(browser, element_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _wait_css(browser, f"#{element_id}")  # the filter bar may render after the cards
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text, Keys.TAB)


def test_a_typed_range_reaches_the_url_with_both_ends(browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, ".kpi")
    _type_date(browser, "flt-dates", "2025-03-01")
    _type_date(browser, "flt-dates-end-date", "2025-04-30")
    _wait(browser, lambda d: "from=2025-03-01" in d.current_url and "to=2025-04-30"
          in d.current_url)
    # the re-rendered picker keeps both ends
    _wait(browser, lambda d: d.find_element("id", "flt-dates").get_attribute("value")
          == "2025-03-01")
    assert browser.find_element("id", "flt-dates-end-date").get_attribute("value") \
        == "2025-04-30"


def test_an_inverted_range_is_not_applied_and_says_so(browser, live_url):
    browser.get(live_url + "/?from=2025-03-01&to=2025-04-30")
    _wait_css(browser, ".kpi")
    _type_date(browser, "flt-dates-end-date", "2025-02-01")
    note = _wait(browser, lambda d: d.find_element("id", "flt-dates-note").text or False)
    assert "结束日期早于开始日期" in note
    assert "to=2025-04-30" in browser.current_url


def test_date_presets_and_the_calendar_above_the_map(browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, "path.leaflet-interactive")
    click_css(browser, "#flt-preset-last_month")
    _wait(browser, lambda d: "from=2025-05-01" in d.current_url and "to=2025-05-31"
          in d.current_url)  # the demo data ends on 2025-06-30
    click_css(browser, "#flt-preset-all")
    _wait(browser, lambda d: "from=" not in d.current_url)
    click_css(browser, "#flt-dates")  # the page re-rendered for the new URL: find it anew
    calendar = _wait_css(browser, ".dash-datepicker-calendar-container")
    assert "一" in calendar.text and "2025年6月" in calendar.text  # zh-CN, at the data's end
    # every point of the calendar is the calendar's, also where it lies over the map
    box = calendar.rect
    for x, y in ((box["x"] + 20, box["y"] + box["height"] - 4),
                 (box["x"] + box["width"] / 2, box["y"] + box["height"] - 4)):
        top = browser.execute_script("return document.elementFromPoint(arguments[0], "
                                     "arguments[1])", x, y)
        assert browser.execute_script("return arguments[0].contains(arguments[1])",
                                      calendar, top), top.get_attribute("class")


def test_the_ranking_s_filter_menu_is_in_chinese(browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, "#city-ranking .ag-row")
    browser.find_element(
        "css selector", "#city-ranking .ag-header-cell[col-id='name'] .ag-header-cell-filter-button"
        ", #city-ranking .ag-header-cell[col-id='name'] .ag-header-icon").click()
    menu = _wait_css(browser, ".ag-filter")
    text = menu.text + " ".join(o.get_attribute("placeholder") or ""
                                for o in menu.find_elements("css selector", "input"))
    assert "Contains" not in text and "Filter" not in text, text
    assert "包含" in text or "筛选" in text, text


def test_an_export_clicked_before_navigating_away_still_arrives(browser, live_url,
                                                                download_dir):
    import time

    browser.get(live_url + "/?unit=440103000000")
    _wait_css(browser, ".kpi")
    started = time.time() - 1
    # the cards and buttons may re-render while the page settles: click_css and _wait retry
    # on a stale element instead of failing on it
    click_css(browser, "#exp-xlsx")
    click_css(browser, "a.crumb")  # at once, to the city
    _wait(browser, lambda d: "unit=" not in d.current_url)
    _wait(browser, lambda d: "甲区 · 领导视图 · 案件表 Excel" in _text(d, "#my-exports"))
    path = _wait(browser, lambda d: next(
        (p for p in download_dir.iterdir() if p.stat().st_mtime > started
         and p.name.endswith(".xlsx")), False))
    assert path.name.startswith("甲区_领导视图_案件表_")
    import pandas as pd

    notes = pd.read_excel(path, sheet_name="说明", dtype=str)
    facts = dict(zip(notes["项目"], notes["内容"], strict=False))
    assert facts["范围"] == "甲区（区）" and facts["筛选条件"] == "无（全部案件）"
    assert facts["数据截至"].startswith("2025-06-30") and "行" in facts["行数"]
    cases = pd.read_excel(path, sheet_name="案件", dtype=str)
    assert f"{len(cases):,} 行" in facts["行数"]
    _wait(browser, lambda d: "已完成" in _text(d, "#my-exports"))
    _wait(browser, lambda d: d.find_element("id", "exp-xlsx").is_enabled())


def test_the_map_names_its_units_and_scheme_and_small_samples_say_so(browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, "path.leaflet-interactive")
    labels = _wait(browser, lambda d: [e.text for e in d.find_elements(
        "css selector", ".unit-label-text")] or False)
    assert sorted(labels) == ["乙区", "甲区"]
    legend = _wait(browser, lambda d: (lambda t: t if "全市：" in t else False)(
        _text(d, "#map-legend")))
    assert "按当前单位分位数" in legend
    fills = {p.get_attribute("fill") for p in browser.find_elements(
        "css selector", ".leaflet-overlay-pane path.leaflet-interactive")}
    assert len(fills) == 2  # two districts, two classes
    click_css(browser, "#map-fixed-breaks input")
    _wait(browser, lambda d: "breaks=fixed" in d.current_url)
    _wait(browser, lambda d: "固定分级" in _text(d, "#map-legend"))
    # the 积案化解率 card of the demo rests on 8 cases (< 10): 样本不足, not a large percentage
    cards = {c.find_element("css selector", ".kpi-label").text:
             c.find_element("css selector", ".kpi-value").text
             for c in browser.find_elements("css selector", "#city-kpis .kpi")}
    assert cards["积案化解率"] == "样本不足" and cards["按期办结率"].endswith("%")


def test_the_monthly_report_opens_and_holds_the_numbers_of_gridgov_metrics(
        browser, live_url, download_dir, demo_store):
    import json
    import time

    from layers.report import read_kpis
    from tests.conftest import run_cli

    browser.get(live_url + "/?unit=440104000000")
    _wait_css(browser, ".kpi")
    started = time.time() - 1
    click_css(browser, "#exp-docx")
    path = _wait(browser, lambda d: next(
        (p for p in download_dir.iterdir() if p.stat().st_mtime > started
         and p.name.endswith(".docx")), False))
    assert path.name.startswith("乙区_领导视图_月报_2025年6月_")
    kpis = read_kpis(path.read_bytes())  # python-docx reads it back
    result = run_cli(demo_store, ["metrics", "--level", "district", "--from", "2025-06-01",
                                  "--to", "2025-06-30", "--format", "json"])
    row = next(r for r in json.loads(result.stdout) if r["code"] == "440104000000")
    assert kpis["信访件数"]["数值"] == f"{row['cases']:,}"
    line = kpis["按期办结率"]
    assert (line["分子"], line["分母"]) == (f"{row['on_time_completion_num']:,}",
                                        f"{row['on_time_completion_den']:,}")
    assert line["全市"].endswith("%")  # a city account sees the city beside its unit


_GRID_ROWS = """return Array.from(document.querySelectorAll('.ag-theme-quartz[id]')).map(n => [n.id,
    n.querySelectorAll('.ag-center-cols-container .ag-row').length,
    dash_ag_grid.getApi(n.id).getDisplayedRowCount()]);"""


@pytest.mark.parametrize("path", ["/", "/street?unit=440103001000"])
def test_a_printed_view_has_no_controls_and_every_row(browser, live_url, path):
    browser.get(live_url + path)
    _wait_css(browser, "path.leaflet-interactive")
    _wait_css(browser, ".kpi, .case-item")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.execute_script("window.dispatchEvent(new Event('beforeprint'))")
        for selector in (".filters", ".export-bar", ".map-controls", ".nav"):
            shown = [e for e in browser.find_elements("css selector", selector)
                     if e.is_displayed()]
            assert not shown, f"{selector} is printed"
        assert "筛选条件：无（全部案件）" in _text(browser, ".print-facts")
        _wait(browser, lambda d: all(rendered == total for _id, rendered, total
                                     in d.execute_script(_GRID_ROWS)))
        browser.execute_script("window.dispatchEvent(new Event('afterprint'))")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_a_card_s_mom_equals_the_metric_of_the_month_before(browser, live_url, demo_store):
    import json
    import re

    from tests.conftest import run_cli

    browser.get(live_url + "/?from=2025-05-01&to=2025-05-31")
    card = _wait(browser, lambda d: next(
        (c for c in d.find_elements("css selector", "#city-kpis .kpi")
         if "按期办结率" in c.text and "环比" in c.text), False))
    shown = float(re.search(r"环比 ([+−-][\d.]+) 个百分点", card.text).group(1)
                  .replace("−", "-"))
    assert "同比" not in card.text  # the demo data starts in July 2024: no May 2024

    def city(first: str, last: str) -> dict:
        out = run_cli(demo_store, ["metrics", "--level", "district", "--from", first,
                                   "--to", last, "--format", "json"])
        return next(r for r in json.loads(out.stdout) if r["row_type"] == "city")

    may, april = city("2025-05-01", "2025-05-31"), city("2025-04-01", "2025-04-30")
    assert shown == round(100 * (may["on_time_completion"] - april["on_time_completion"]), 1)
    header = " ".join(h.text for h in browser.find_elements(
        "css selector", "#city-ranking .ag-header-cell-text"))
    assert "环比" in header or "按期办结率环比" in browser.execute_script(
        "return JSON.stringify(dash_ag_grid.getApi('city-ranking').getColumnDefs())")


def test_a_ranking_row_drills_down_and_a_chosen_village_owns_the_cards(browser, live_url):
    browser.get(live_url + "/")
    cell = _wait_css(browser, "#city-ranking .ag-row[row-id='440103000000'] [col-id='name']")
    cell.click()
    _wait(browser, lambda d: "unit=440103000000" in d.current_url)
    _wait(browser, lambda d: _text(d, ".crumb.current") == "甲区")
    # a village chosen in 领导视图: its street's ranking, its own cards and subtitle
    browser.get(live_url + "/?unit=440103001001")
    _wait(browser, lambda d: "已选：" in _text(d, ".page-title"))
    cases = _wait(browser, lambda d: next(
        (c.find_element("css selector", ".kpi-value").text
         for c in d.find_elements("css selector", "#city-kpis .kpi")
         if "信访件数" in c.text), False))
    street = browser.execute_script(
        "return dash_ag_grid.getApi('city-ranking').getDisplayedRowAtIndex(0).data")
    rows = browser.execute_script(
        "var a = dash_ag_grid.getApi('city-ranking'), out = [];"
        "a.forEachNode(n => out.push(n.data)); return out;")
    village = next(r for r in rows if r["code"] == "440103001001")
    assert street and int(cases.replace(",", "")) == village["cases"]


@pytest.fixture
def phone(browser):
    """The browser as a 375 px touch phone (back to the desktop afterwards)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 375, "height": 800, "deviceScaleFactor": 2, "mobile": True})
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled",
                            {"enabled": True, "maxTouchPoints": 5})
    yield browser
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_at_375_px_one_finger_over_the_map_scrolls_the_page(phone, live_url):
    phone.get(live_url + "/village?unit=440103001001")
    _wait_css(phone, ".case-item")
    polygon = _wait_css(phone, "path.leaflet-interactive")
    # the first screen shows numbers: filters and legend folded, the case points box says so
    assert phone.execute_script("return document.querySelector('details.filters').open") is False
    assert phone.execute_script(
        "return document.querySelector('details.map-legend').open") is False
    assert phone.find_element("css selector", "#map-overlays input[value='points']") \
        .is_selected()
    box = phone.find_element("css selector", ".leaflet-container")
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    rect = phone.execute_script("var b = arguments[0].getBoundingClientRect();"
                                "return [b.left + b.width / 2, b.top + b.height / 2]", box)
    x, y = int(rect[0]), int(rect[1])
    assert polygon.tag_name == "path"
    before = phone.execute_script("return window.scrollY")
    pane = phone.execute_script(
        "return document.querySelector('.leaflet-map-pane').style.transform")
    phone.execute_cdp_cmd("Input.dispatchTouchEvent",
                          {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        phone.execute_cdp_cmd("Input.dispatchTouchEvent", {
            "type": "touchMove", "touchPoints": [{"x": x, "y": y - 12 * step}]})
    phone.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    _wait(phone, lambda d: d.execute_script("return window.scrollY") > before + 50)
    assert phone.execute_script(
        "return document.querySelector('.leaflet-map-pane').style.transform") == pane
    # a tap on a village of the street map opens its numbers and 进入, it does not drill
    phone.get(live_url + "/street?unit=440103001000")
    village = _wait_css(phone, ".leaflet-overlay-pane path.leaflet-interactive")
    _wait_css(phone, ".unit-label-text, #street-villages")
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", village)
    x, y = (int(v) for v in phone.execute_script(
        "var b = arguments[0].getBoundingClientRect();"
        "return [b.left + b.width / 2, b.top + b.height / 2]", village))
    phone.execute_cdp_cmd("Input.dispatchTouchEvent",
                          {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    phone.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    popup = _wait(phone, lambda d: next((e for e in d.find_elements(
        "css selector", ".unit-popup") if "按期办结率" in e.text), False))  # once shown
    assert "unit=440103001000" in phone.current_url
    popup.find_element("css selector", ".btn-enter").click()
    _wait(phone, lambda d: "unit=440103001000" not in d.current_url)


def test_a_village_chosen_in_the_street_view_narrows_its_cards(browser, live_url):
    def open_cases(d) -> str | bool:
        cards = d.find_elements("css selector", "#street-body-side .kpi")
        return next((c.find_element("css selector", ".kpi-value").text for c in cards
                     if c.text.startswith("未办结")), False)

    browser.get(live_url + "/street?unit=440103001000")
    whole = _wait(browser, open_cases)
    browser.get(live_url + "/street?unit=440103001001")
    _wait(browser, lambda d: "已选：" in _text(d, ".page-title"))
    village = _wait(browser, open_cases)
    assert int(village) < int(whole)


def test_the_definitions_page_cites_the_regulation_not_project_files(browser, live_url):
    browser.get(live_url + "/definitions")
    page = _wait_css(browser, "#definitions-warnings").find_element("xpath", "ancestor::main")
    text = page.text
    assert "信访工作条例" in text
    for developer in (".md", "layers.", "DOMAIN", "check_flag", "EPSG:", "star=True"):
        assert developer not in text, developer


def test_the_two_strong_quadrant_names_its_streets(browser, live_url):
    browser.get(live_url + "/")
    names = _wait_css(browser, "#city-two-strong-names")
    assert names.text.startswith("“两强”镇街（")
    assert browser.find_elements("css selector", "#city-two-strong .scatterlayer .point")
