"""Logging in as each role in headless Chromium: own area, a reveal on record, logout, lockout."""

from __future__ import annotations

import pytest

from geo import accounts, audit
from tests.dashboard.conftest import APP_SETTINGS, login
from tests.dashboard.test_browser import _text, _wait, _wait_css, _wait_text

pytestmark = pytest.mark.browser


def test_each_demo_role_lands_on_its_own_area(chromium, live_url, demo_accounts):
    expected = {"grid_worker": "/village?unit=", "street": "/street?unit=", "district": "/?unit=",
                "city": "/"}
    for role, start in expected.items():
        account = demo_accounts[role]
        login(chromium, live_url, account.username, demo_accounts["password"])
        assert chromium.current_url.removeprefix(live_url).startswith(start), role
        if role != "city":
            assert account.scope_code in chromium.current_url
        name = account.display_name
        _wait(chromium, lambda d, name=name: _text(d, "#account-name").startswith(name))
        title = _wait_text(chromium, ".page-title span")  # rendered with the page
        assert title.startswith("测试市" if role == "city" else _unit_name(account.scope_code))
        visible = [e.text for e in chromium.find_elements("css selector", ".nav a.nav-link")
                   if e.is_displayed()]
        if role == "grid_worker":  # the leaders' and street views lie above a village
            assert "网格员视图" in visible and "领导视图" not in visible
    login(chromium, live_url, "demo-admin", demo_accounts["password"])
    assert chromium.current_url.endswith("/admin")
    _wait_css(chromium, "#admin-audit")
    chromium.gridgov_user = None


def test_a_grid_worker_reveals_one_contact_and_the_audit_shows_it(chromium, live_url,
                                                                  demo_accounts, demo_store):
    worker = demo_accounts["grid_worker"]
    login(chromium, live_url, worker.username, demo_accounts["password"])
    card = _wait_css(chromium, ".case-card-link")
    case_id = card.find_element("css selector", ".case-id").text
    card.click()
    _wait(chromium, lambda d: _text(d, "#case-id") == case_id)
    assert "*" in _text(chromium, "#case-fields")  # masked until revealed
    chromium.find_element("css selector", "#case-reveal-reason input[value='followup']").click()
    chromium.find_element("id", "case-reveal").click()
    phone = _wait_text(chromium, "#reveal-phone")
    assert "*" not in phone and any(ch.isdigit() for ch in phone)
    trail = audit.read_trail(demo_store)
    reveal = trail[trail["action"] == "reveal"].iloc[-1]
    assert reveal["username"] == worker.username and reveal["case_ids"] == case_id
    assert "回访" in reveal["detail"] and phone.split("：")[-1] not in str(reveal.to_dict())
    # the administrator's audit page shows it
    login(chromium, live_url, "demo-admin", demo_accounts["password"])
    rows = _wait_text(chromium, "#admin-audit tbody")
    assert case_id in rows and "查看联系方式" in rows and "回访" in rows
    chromium.gridgov_user = None


def test_logout_ends_access_even_for_a_kept_cookie(chromium, live_url, demo_accounts):
    login(chromium, live_url, "demo-street", demo_accounts["password"])
    _wait_css(chromium, ".crumb.current")
    kept = chromium.get_cookies()
    chromium.find_element("id", "logout").click()
    _wait(chromium, lambda d: "/login" in d.current_url)
    for cookie in kept:  # replay the old session cookie: the session is over on the server
        chromium.add_cookie({k: v for k, v in cookie.items() if k in ("name", "value", "path")})
    chromium.get(live_url + "/street")
    _wait(chromium, lambda d: "/login" in d.current_url)
    chromium.gridgov_user = None


def test_a_locked_account_cannot_log_in(chromium, live_url, demo_store):
    password = "a long enough password"
    accounts.add_user(demo_store, username="locked-clerk", display_name="锁定测试",
                      role="street", scope_code="440103001000", password=password,
                      settings=APP_SETTINGS, actor=audit.Actor("test", "admin"),
                      must_change=False)
    for _ in range(APP_SETTINGS.login_max_failures):
        accounts.login(demo_store, "locked-clerk", "wrong", settings=APP_SETTINGS, address=None)
    login(chromium, live_url, "locked-clerk", password)  # the right password, too late
    assert "/login" in chromium.current_url
    assert "锁定" in _text(chromium, "#login-error")
    chromium.gridgov_user = None


def _unit_name(code: str) -> str:
    from tests.grids import DISTRICTS, STREETS, tiny_grid

    names = dict(zip(tiny_grid()["code"], tiny_grid()["name"], strict=True))
    return names.get(code) or DISTRICTS.get(code, STREETS.get(code, ("",)))[0]
