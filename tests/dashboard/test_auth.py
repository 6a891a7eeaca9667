"""The login page and the session gate through the Flask test client: CSRF, cookies, redirects."""

from __future__ import annotations

import re

from geo import accounts, audit
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.dash_client import DashClient


def _form_token(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"',
                     client.get("/login").get_data(as_text=True)).group(1)


def test_login_needs_the_csrf_token_and_sets_safe_cookies(dash_app, demo_accounts):
    http = dash_app.server.test_client()
    page = http.get("/login").get_data(as_text=True)
    assert "登录" in page and 'lang="zh-CN"' in page
    no_token = http.post("/login", data={"username": "demo-city",
                                         "password": demo_accounts["password"]})
    assert no_token.status_code == 400 and "CSRF" in no_token.get_data(as_text=True)
    token = _form_token(http)
    wrong = http.post("/login", data={"username": "demo-city", "password": "nope",
                                      "csrf_token": token})
    assert wrong.status_code == 200 and "用户名或密码错误" in wrong.get_data(as_text=True)
    ok = http.post("/login", data={"username": "demo-city", "password": demo_accounts["password"],
                                   "csrf_token": _form_token(http), "next": "//evil.example/x"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"  # never another host
    session_cookie = next(h for h in ok.headers.getlist("Set-Cookie")
                          if h.startswith("gridgov_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP here; HTTPS requests get it
    layout = http.get("/_dash-layout")
    csrf_cookie = next(h for h in layout.headers.getlist("Set-Cookie")
                       if h.startswith("_csrf_token="))
    assert "SameSite=Strict" in csrf_cookie and "HttpOnly" not in csrf_cookie
    secure = http.get("/_dash-layout", base_url="https://localhost")
    assert all("Secure" in h for h in secure.headers.getlist("Set-Cookie"))


def test_a_new_account_must_change_its_password_first(dash_app, demo_store):
    accounts.add_user(demo_store, username="new-clerk", display_name="新人", role="street",
                      scope_code="440103001000", password="one-time password",
                      settings=APP_SETTINGS, actor=audit.Actor("test", "admin"))
    client = DashClient(dash_app.server.test_client())
    first = client.login("new-clerk", "one-time password")
    assert first.headers["Location"] == "/password"
    assert client.http.get("/street").headers["Location"] == "/password"
    assert client.http.get("/_dash-dependencies").status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.http.get("/password").get_data(as_text=True)).group(1)
    changed = client.http.post("/password", data={"old": "one-time password",
                                                  "new": "my own password 1",
                                                  "repeat": "my own password 1",
                                                  "csrf_token": token})
    assert changed.status_code == 302 and changed.headers["Location"].startswith("/street")
    assert client.http.get("/_dash-dependencies").status_code == 200
    names = [cb.name for cb in client.callbacks()]
    label = next(cb for cb in client.callbacks() if cb.name == "shell-data-label.children")
    text = client.call(label, {"view-query.data": {"page": "street", "search": ""}}).get_data(
        as_text=True)
    assert "本辖区共" in text and names


def test_the_picker_offers_only_units_in_scope_as_name_street_district(dash_app, demo_accounts):
    district = demo_accounts["district"]
    client = DashClient(dash_app.server.test_client())
    client.login(district.username, demo_accounts["password"])
    router = next(cb for cb in client.callbacks() if cb.name == "_pages_content.children")
    page = client.call(router, {"_pages_location.pathname": "/village",
                                "_pages_location.search": f"?unit={district.scope_code}"})
    options = _find(page.get_json(), "unit-picker")["options"]
    labels = [o["label"] for o in options]
    assert labels and all(o["value"].startswith(district.scope_code[:6]) for o in options)
    assert "甲一街道南社区（甲一街道，甲区）" in labels


def _find(tree, component_id: str):
    """The props of the component with this id anywhere in a JSON layout tree."""
    if isinstance(tree, dict):
        if tree.get("id") == component_id:
            return tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, component_id)
            if found is not None:
                return found
    return None
