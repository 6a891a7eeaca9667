"""Hostile input stays harmless: 55 payloads in every text field, every view, in Chromium.

One store: the tiny grid, then a case file and a station file written with a payload
(tests/hostile.py) in every text field, loaded through the real ETL (``ingest_cases`` /
``ingest_stations`` on the written files). One server: ``gridgov serve`` in its own process
(a Dash app hands its callbacks to the first app of a process, and this one must be the real
command anyway). Then every view — city, district, street, village at desktop and 375 px —
with case points and stations on the map and every point hovered, the case page of every
case, the downloads and the standalone map opened from disk. Each page load is checked in
one batch: no payload ran (the flag it sets stays unset, no alert), no CSP violation, no
console error, no 5xx response; the server logged no exception.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests.dashboard.conftest import _free_port, _wait_for
from tests.dashboard.test_browser import _wait
from tests.hostile import FLAG, PAYLOADS

pytestmark = pytest.mark.browser
CORPUS_SALT = "corpus-test-salt-not-the-development-one"
CORPUS_PASSWORD = "Corpus-Pass-2026!"

ROOT = Path(__file__).parents[2]
VILLAGE, STREET, DISTRICT = "440103001001", "440103001000", "440103000000"
CASE_TEXT = ("信访件编号", "内容分类", "信访目的", "信访渠道", "办理状态", "评价", "登记机构级别",
             "承办单位", "包案领导", "地址", "信访内容", "信访人", "联系电话", "身份证号",
             "重复件编号", "问题属地")
STATION_TEXT = ("站点编号", "站点名称", "地址")  # 服务单位代码 is a code: its width is checked
STATION_TYPES = ("村居服务站", "镇街综治中心", "区信访超市", "人民调解工作室")
WATCH = """
window.__gridgov_csp = [];
window.__gridgov_alerts = 0;
document.addEventListener("securitypolicyviolation", function (e) {
    window.__gridgov_csp.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber,
                               e.sample].join(" | "));
});
window.alert = window.confirm = window.prompt = function () { window.__gridgov_alerts += 1; };
"""
"""Runs before any script of every page (CDP): collects CSP violations, counts alerts."""
CHECK = f"""
return {{flag: window.{FLAG} === undefined ? null : String(window.{FLAG}),
         alerts: window.__gridgov_alerts, csp: window.__gridgov_csp || null,
         parentFlag: window.parent && window.parent.{FLAG} !== undefined}};
"""
HOVER = """
var out = [];
document.querySelectorAll(arguments[0]).forEach(function (el) {
    el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
    var pane = el.closest(".leaflet-container").querySelector(".leaflet-tooltip-pane");
    var tip = pane.lastElementChild;  // the tooltip just opened
    if (tip) { out.push({text: tip.textContent, elements: tip.querySelectorAll("*").length}); }
    el.dispatchEvent(new MouseEvent("mouseout", {bubbles: true}));
});
return out;
"""
"""Hover every matching map element in turn; return each tooltip's text and element count."""


def _rotated(i: int, k: int) -> str:
    return PAYLOADS[(i + k) % len(PAYLOADS)]


def _write_files(folder: Path) -> tuple[Path, Path]:
    """A case file and a station file: row i holds payload i+k in its k-th text field."""
    cases = io.StringIO()
    writer = csv.writer(cases)
    writer.writerow([*CASE_TEXT, "登记时间", "受理时间", "办理期限", "经度", "纬度"])
    for i in range(len(PAYLOADS)):
        accepted = i % 2 == 0
        writer.writerow([
            *[_rotated(i, k) for k in range(len(CASE_TEXT))],
            f"2025-06-{1 + i % 28:02d} 09:{i % 60:02d}:00",
            f"2025-06-{2 + i % 28:02d} 10:00:00" if accepted else "",
            "2025-06-20" if accepted else "",
            f"{113.3012 + (i % 8) * 0.0011:.4f}", f"{23.1012 + (i // 8) * 0.0011:.4f}",
        ])
    stations = io.StringIO()
    writer = csv.writer(stations)
    writer.writerow([*STATION_TEXT, "站点类型", "经度", "纬度"])
    for i in range(len(PAYLOADS)):
        writer.writerow([*[_rotated(i, k) for k in range(len(STATION_TEXT))],
                         STATION_TYPES[i % 4], f"{113.3017 + (i % 8) * 0.0011:.4f}",
                         f"{23.1017 + (i // 8) * 0.0011:.4f}"])
    case_file, station_file = folder / "cases.csv", folder / "stations.csv"
    case_file.write_text(cases.getvalue(), encoding="utf-8")
    station_file.write_text(stations.getvalue(), encoding="utf-8")
    return case_file, station_file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus store loaded through the ETL; yields (engine, stored case ids, station names)."""
    from etl.ingest import ingest_cases
    from etl.stations import ingest_stations
    from geo.grid import load_units
    from geo.settings import Settings
    from geo.store import Store, make_engine, upgrade_schema
    from tests.grids import tiny_grid

    folder = tmp_path_factory.mktemp("corpus")
    engine = make_engine(f"sqlite:///{folder / 'corpus.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    case_file, station_file = _write_files(folder)
    store = Store(engine, Settings(basemap="none"))
    case_report = ingest_cases(store, case_file)
    station_report = ingest_stations(store, station_file)
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT case_id FROM cases")).scalars().all()
        names = conn.execute(sa.text("SELECT name FROM station")).scalars().all()
    # most payload rows must really be in the store, or the views below test little; the rest
    # are rejected row by row for the ETL's limits only (a NUL, a text over max_text_chars, an
    # id over 64 characters), never dropped
    assert case_report.inserted == len(ids) >= 0.6 * len(PAYLOADS), case_report
    assert case_report.inserted + case_report.rejected == len(PAYLOADS), case_report
    with engine.connect() as conn:
        reasons = set(conn.execute(sa.text("SELECT reason_code FROM reject")).scalars())
    assert reasons <= {"nul_character", "too_long"}, reasons
    assert station_report.inserted == len(names) >= 0.8 * len(PAYLOADS), station_report
    from geo.accounts import add_user, cli_actor

    add_user(engine, username="corpus-city", display_name="全市值班", role="city",
             scope_code="440100000000", password=CORPUS_PASSWORD, must_change=False,
             settings=Settings(id_hash_salt=CORPUS_SALT), actor=cli_actor())
    yield engine, ids, names, folder
    engine.dispose()


@pytest.fixture(scope="module")
def corpus_url(corpus) -> str:
    """``gridgov serve`` on the corpus store, in its own process; its stderr is checked after."""
    engine, _ids, _names, folder = corpus
    port = _free_port()
    log = (folder / "server.log").open("w", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDGOV_BASEMAP": "none",
           "GRIDGOV_ID_HASH_SALT": CORPUS_SALT}  # a production server: real login, real salt
    process = subprocess.Popen(
        [sys.executable, "-c", "from gridgov.cli import main; main()", "--db",
         engine.url.render_as_string(hide_password=False), "serve", "--port", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    text = (folder / "server.log").read_text(encoding="utf-8")
    assert "Traceback" not in text and "Exception on" not in text, text[-4000:]


@pytest.fixture(scope="module")
def watched(chromium, corpus_url):
    """The session's Chromium, logged in to the corpus server, with the watch script injected
    into every page it opens."""
    from tests.dashboard.conftest import login

    login(chromium, corpus_url, "corpus-city", CORPUS_PASSWORD)
    script = chromium.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    chromium.execute_cdp_cmd("Network.enable", {})
    yield chromium
    chromium.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                             {"identifier": script["identifier"]})
    chromium.set_window_size(1400, 1000)
    chromium.delete_all_cookies()
    chromium.gridgov_user = None  # the next test logs in to its own server again


def _assert_harmless(browser, where: str) -> None:
    state = browser.execute_script(CHECK)
    assert state["flag"] is None and not state["parentFlag"], f"{where}: a payload ran"
    assert state["alerts"] == 0, f"{where}: alert() was called"
    assert state["csp"] == [], f"{where}: CSP violations {state['csp']}"
    logs = browser.get_log("browser")
    errors = [e["message"][:300] for e in logs if e["level"] == "SEVERE"]
    assert errors == [], f"{where}: console errors {errors}"


def _tooltips(browser, selector: str) -> list[dict]:
    return browser.execute_script(HOVER, selector)


def test_every_view_shows_the_payloads_as_text(watched, corpus, corpus_url):
    browser = watched
    _engine, ids, names, _folder = corpus
    views = [  # (path, what shows when it is drawn: an element, the breadcrumb's current unit)
        ("/?show=points&show=stations", ".kpi", "全市"),
        (f"/?unit={DISTRICT}&show=points&show=stations", ".kpi", "甲区"),
        (f"/street?unit={STREET}&show=points&show=stations", "#street-overdue-card", "甲一街道"),
        (f"/village?unit={VILLAGE}&show=stations", ".case-item", "甲一街道南社区"),
    ]
    for width, height in ((1400, 1000), (375, 812)):
        browser.set_window_size(width, height)
        browser.get_log("browser")
        browser.get(corpus_url + "/definitions")
        _wait(browser, lambda d: d.find_element("css selector", "#definitions-table"))
        for path, ready, crumb in views:  # in-app navigation, as a user clicks through
            where = f"{path} at {width}px"
            browser.execute_script("window.gridgov.go(arguments[0])", path)
            _wait(browser, lambda d, r=ready, c=crumb: d.execute_script(
                "var e = document.querySelector('.crumb.current');"
                "return !!document.querySelector(arguments[0]) && !!e && e.textContent === "
                "arguments[1] && !!document.querySelector('path.station-point')", r, c))
            tips = _tooltips(browser, "path.case-point, path.station-point")
            assert tips and all(t["elements"] == 1 for t in tips), where  # text only
            if "village" in path:
                shown = {t["text"].split(" · ", 1)[0] for t in tips}
                assert set(ids) <= shown, where  # every case hovered, its id shown as typed
                assert set(names) <= {t["text"].split("\n", 1)[0] for t in tips}, where
                listed = browser.execute_script(
                    "return Array.from(document.querySelectorAll('.case-item .case-id'),"
                    " e => e.textContent)")
                assert listed and set(listed) <= set(ids), where
            _assert_harmless(browser, where)
    browser.set_window_size(1400, 1000)


def test_every_case_page_shows_the_payloads_as_text(watched, corpus, corpus_url):
    browser = watched
    _engine, ids, _names, _folder = corpus
    browser.get_log("browser")
    browser.get(corpus_url + "/definitions")
    _wait(browser, lambda d: d.find_element("css selector", "#definitions-table"))
    opened = refused = 0
    for case_id in ids:
        href = "/case/" + quote(case_id, safe="")
        browser.execute_script("window.gridgov.go(arguments[0])", href)
        if len(case_id) <= 64 and "\x00" not in case_id:
            _wait(browser, lambda d, c=case_id: d.execute_script(
                "var e = document.getElementById('case-id'); return e && e.textContent") == c)
            opened += 1
        else:
            _wait(browser, lambda d: "未找到" in d.execute_script(
                "var e = document.querySelector('.empty-message'); return e && e.textContent"))
            refused += 1
    assert opened >= len(ids) - 5 and refused <= 5  # the 20,000-character id and the like
    _assert_harmless(browser, "case pages")
    # one at 375 px, straight from the address bar
    browser.set_window_size(375, 812)
    browser.get(corpus_url + "/case/" + quote(ids[0], safe=""))
    _wait(browser, lambda d: d.find_element("css selector", "#case-timeline"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 375
    _assert_harmless(browser, "case page at 375px")
    browser.set_window_size(1400, 1000)


def test_exports_and_the_standalone_map_hold_the_payloads_as_inert_text(
        watched, corpus, corpus_url):
    from openpyxl import load_workbook

    browser = watched
    _engine, ids, names, folder = corpus
    # the case table: a workbook (a NUL is among the values), no formula cell anywhere
    xlsx = folder / "cases.xlsx"
    browser.get(corpus_url + "/definitions")  # on the server's origin: its cookies apply
    xlsx.write_bytes(_get(corpus_url + f"/download/street/cases.xlsx?unit={STREET}", browser))
    sheet = load_workbook(xlsx)["案件"]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert len({c.value for c in cells if c.column == 1} - {"信访件编号"}) == len(ids)
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert all(not str(c.value).startswith(("=", "+", "@")) for c in cells if c.value)
    csv_text = _get(corpus_url + f"/download/street/cases.csv?unit={STREET}",
                    browser).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert len(rows) == len(ids) + 1
    assert all(not v.startswith(("=", "+", "@", "\t", "\r")) for row in rows for v in row)

    # the standalone map: data only inside its JSON block, never evaluated or spliced
    page = _get(corpus_url + f"/download/street/map.html?unit={STREET}&show=stations",
                browser).decode()
    block = re.search(r'<script type="application/json" id="gridgov-map-data">(.*?)</script>',
                      page, flags=re.S)
    data = json.loads(block.group(1))
    assert {f["properties"]["name"] for f in data["stations"]["features"]} == set(names)
    outside = page.replace(block.group(1), "")
    assets = "".join(p.read_text(encoding="utf-8") for p in (
        ROOT / "dashboard" / "vendor" / "leaflet" / "leaflet.js",
        ROOT / "dashboard" / "standalone" / "map.js"))
    for payload in PAYLOADS:
        if len(payload) >= 8 and payload not in assets:
            assert payload not in outside, payload[:40]
    assert "<" not in block.group(1) and "SSTI-49" not in page and os.getcwd() not in page
    exported = folder / "map.html"
    exported.write_text(page, encoding="utf-8")
    browser.get_log("browser")
    browser.get(exported.resolve().as_uri())
    _wait(browser, lambda d: d.find_elements("css selector", "path.station-point"))
    tips = _tooltips(browser, "path.leaflet-interactive")  # every unit and every station
    assert tips and all(t["elements"] == 1 for t in tips)
    assert set(names) <= {t["text"].split("\n", 1)[0] for t in tips}
    legend = browser.execute_script("return document.getElementById('legend').textContent")
    assert "按期办结率" in legend
    _assert_harmless(browser, "standalone map")


def _get(url: str, browser) -> bytes:  # noqa: ANN001 - the logged-in selenium driver
    """Download as the browser's session does (its cookies sent)."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    request = urllib.request.Request(url, headers={"Cookie": cookies})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return response.read()


def test_the_corpus_holds_every_kind_of_payload():
    kinds = {
        "script": "<script>", "event handler": "onerror=", "attribute breakout": "\"><",
        "javascript URL": "javascript:", "jinja": "{{", "template literal": "${",
        "backtick": "`", "entity": "&#", "RTL": "\u202e", "zero-width": "\u200b", "NUL": "\x00",
    }
    for kind, marker in kinds.items():
        assert any(marker in p for p in PAYLOADS), kind
    assert any(len(p) >= 20_000 for p in PAYLOADS) and len(PAYLOADS) >= 40
