"""The public QR-code form and status lookup: CSRF, honeypot, size and rate limits, all in Chinese."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from geo.reportpoints import ensure_point
from geo.settings import Settings
from geo.store import Store
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.stores import serving, serving_copy

VILLAGE = "440103001201"


@pytest.fixture(scope="module")
def form(dash_app, demo_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "store.db"
    with serving_copy(dash_app, demo_store, path, APP_SETTINGS) as store:
        point = ensure_point(store.engine, VILLAGE, level="village")
        yield {"app": dash_app, "store": store, "url": f"/report/{point.token}", "point": point}


def _client(form):
    client = form["app"].server.test_client()
    page = client.get(form["url"]).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, token


def _post(form, client, token, **fields):
    data = {"csrf_token": token, "category": "城乡建设", "description": "楼道灯坏了",
            "name": "", "phone": "", "website": "", **fields}
    return client.post(form["url"], data=data)


def test_the_form_shows_the_unit_and_registers_a_qr_case(form):
    client, token = _client(form)
    page = client.get(form["url"]).get_data(as_text=True)
    assert "甲一街道北村" in page and 'name="website"' in page
    done = _post(form, client, token, phone="13800001234", consent="yes", name="李四",
                 description="<b>楼道</b>灯坏了" + "！" * 3)
    assert done.status_code == 400 and "HTML" in done.get_data(as_text=True)
    done = _post(form, client, token, phone="13800001234", consent="yes", name="李四")
    assert done.status_code == 201, done.get_data(as_text=True)
    case_id = re.search(r'id="report-case-number">([^<]+)<', done.get_data(as_text=True)).group(1)
    with form["store"].engine.connect() as conn:
        row = conn.execute(sa.text("SELECT channel, village_code, petitioner_name FROM cases "
                                   "WHERE case_id = :c"), {"c": case_id}).one()
    assert tuple(row) == ("二维码", VILLAGE, "李四") and case_id.startswith("EWM")
    client, token = _client(form)
    status = client.post("/report/status", data={"csrf_token": token, "case_id": case_id,
                                                 "digits": "1234"})
    body = status.get_data(as_text=True)
    assert status.status_code == 200 and "登记" in body and case_id in body and "李四" not in body
    wrong = client.post("/report/status", data={"csrf_token": token, "case_id": case_id,
                                                "digits": "9999"})
    assert wrong.status_code == 404 and "未找到" in wrong.get_data(as_text=True)
    bad = client.post("/report/status", data={"csrf_token": token, "case_id": "", "digits": "1"})
    assert bad.status_code == 400 and "四位" in bad.get_data(as_text=True)


@pytest.mark.parametrize(("fields", "says"), [
    ({"website": "http://spam"}, "未通过校验"),
    ({"category": "天气"}, "问题类别"),
    ({"description": "  "}, "问题描述"),
    ({"phone": "13800001234"}, "勾选同意"),
    ({"phone": "abc", "consent": "yes"}, "电话"),
])
def test_every_refusal_says_why_in_chinese_and_writes_nothing(form, fields, says):
    client, token = _client(form)
    with form["store"].engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar()
    answer = _post(form, client, token, **fields)
    assert answer.status_code == 400 and says in answer.get_data(as_text=True)
    with form["store"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cases")).scalar() == before


def test_csrf_size_tokens_and_rate_limits(form):
    client = form["app"].server.test_client()
    assert client.post(form["url"], data={"category": "教育"}).status_code == 400  # no CSRF
    client, token = _client(form)
    big = client.post(form["url"], data={"csrf_token": token, "description": "x" * 20_000})
    assert big.status_code == 413 and "过大" in big.get_data(as_text=True)
    unknown = client.get("/report/abcdefgh")
    assert unknown.status_code == 404 and "二维码无效" in unknown.get_data(as_text=True)
    settings = Settings(basemap="none", mode="demo", report_rate_per_hour=1)
    with serving(form["app"], Store(form["store"].engine, settings)):
        client, token = _client(form)
        first = client.post(form["url"], data={"csrf_token": token, "category": "教育",
                                               "description": "限流测试"},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"})
        second = client.post(form["url"], data={"csrf_token": token, "category": "教育",
                                                "description": "限流测试二"},
                             environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert first.status_code == 201 and second.status_code == 400
    assert "一小时内最多提交 1 件" in second.get_data(as_text=True)


def test_hostile_entries_come_back_as_text(form):
    from tests.hostile import PAYLOADS

    client, token = _client(form)
    for payload in PAYLOADS:  # refused (HTML, or an unknown category) and shown back escaped
        answer = _post(form, client, token, description=payload, name=payload[:50],
                       category=payload[:32])
        body = answer.get_data(as_text=True)
        assert answer.status_code in (400, 413), payload[:80]  # 413: the over-long ones
        assert payload not in body or payload.replace("<", "").replace(">", "") == payload, \
            payload[:80]
        assert "window.__xss=1</script>" not in body
