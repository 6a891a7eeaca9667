"""The Open311 GeoReport v2 server: the spec's own example requests, every error path, scope.

Runs against the session's app with its store swapped for a copy of the demo store (writes stay
in the copy). Keys: one for the city, one for street 440103001000, one for a village of the other
district.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geo import apikeys, audit
from geo.settings import Settings
from geo.store import Store
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.stores import serving, serving_copy

V2 = "/open311/v2"
ADMIN = audit.Actor("cli:test", "admin")
STREET = "440103001000"
SPEC_EXAMPLE = {
    # the POST example of the GeoReport v2 spec, verbatim (San Francisco: not placeable here)
    "api_key": None, "jurisdiction_id": "city.gov", "service_code": "001",
    "lat": "37.76524078", "long": "-122.4212043", "address_string": "1234 5th street",
    "email": "smit222@sfgov.edu", "device_id": "tt222111", "account_id": "123456",
    "first_name": "john", "last_name": "smith", "phone": "111111111",
    "description": "A large sinkhole is destroying the street",
    "media_url": "http://example.com/image.jpg", "attribute[WHISPAWN]": "123456",
    "attribute[WHISDORN]": "COISL001",
}
HERE = {**SPEC_EXAMPLE, "jurisdiction_id": "guangzhou", "service_code": "03",
        "lat": "23.105", "long": "113.305", "address_string": "甲一街道南社区",
        "description": "小区门口塌陷，联系 13812345678"}


@pytest.fixture(scope="module")
def api(dash_app, demo_store, tmp_path_factory):
    """The app serving a copy of the demo store, with four keys: {name: token}."""
    path = tmp_path_factory.mktemp("open311") / "store.db"
    with serving_copy(dash_app, demo_store, path, APP_SETTINGS) as store:
        tokens = {}
        for name, scope in (("city", "440100000000"), ("street", STREET),
                            ("village", "440104002201"), ("limited", STREET)):
            tokens[name] = apikeys.add_key(store.engine, name=name, scope_code=scope,
                                           actor=ADMIN)[1]
        yield {"client": dash_app.server.test_client(), "tokens": tokens, "store": store,
               "app": dash_app}


def _settings(api, **changes):
    settings = Settings(basemap="none", mode="demo", **changes)
    return serving(api["app"], Store(api["store"].engine, settings))


def _cases(api) -> int:
    with api["store"].engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM cases")).scalar()


def _error(response, status: int) -> str:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert isinstance(body, list) and len(body) == 1 and body[0]["code"] == status
    return body[0]["description"]


def test_discovery_and_services_follow_the_spec(api):
    client = api["client"]
    discovery = client.get(f"{V2}/discovery.json").get_json()
    assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    services = client.get(f"{V2}/services.json").get_json()
    assert len(services) == 19 and services[2]["service_code"] == "03"
    assert services[2]["service_name"] == "城乡建设" and services[2]["type"] == "realtime"
    assert set(services[0]) == {"service_code", "service_name", "description", "metadata",
                                "type", "keywords", "group"}
    assert client.get(f"{V2}/services/03.json").get_json() == {"service_code": "03",
                                                               "attributes": []}
    _error(client.get(f"{V2}/services/99.json"), 404)
    _error(client.get(f"{V2}/nothing.json"), 404)
    _error(client.get(f"{V2}/services/03.json?jurisdiction_id=sf"), 404)


def test_the_spec_example_posts_and_reads_back(api):
    client, before = api["client"], _cases(api)
    verbatim = client.post(f"{V2}/requests.json",
                           data={**SPEC_EXAMPLE, "api_key": api["tokens"]["street"]})
    assert "jurisdiction_id" in _error(verbatim, 404)
    posted = client.post(f"{V2}/requests.json", data={**HERE, "api_key": api["tokens"]["street"]})
    assert posted.status_code == 201, posted.data
    [answer] = posted.get_json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    case_id = answer["service_request_id"]
    assert case_id.startswith("WS") and _cases(api) == before + 1
    [got] = client.get(f"{V2}/requests/{case_id}.json",
                       query_string={"api_key": api["tokens"]["street"]}).get_json()
    assert got["status"] == "open" and got["service_code"] == "03"
    assert got["address_id"] == "440103001001" and got["lat"] == pytest.approx(23.105)
    assert "138****5678" in got["description"] and "13812345678" not in got["description"]
    assert "smith" not in str(got) and "111111111" not in str(got)
    assert got["requested_datetime"].endswith("+08:00")
    listed = client.get(f"{V2}/requests.json", query_string={
        "api_key": api["tokens"]["city"], "status": "open", "service_code": "03"}).get_json()
    assert case_id in [r["service_request_id"] for r in listed]
    outside = client.get(f"{V2}/requests/{case_id}.json",
                         query_string={"api_key": api["tokens"]["village"]})
    _error(outside, 403)
    assert case_id not in str(client.get(f"{V2}/requests.json", query_string={
        "api_key": api["tokens"]["village"]}).data)
    _error(client.get(f"{V2}/requests/NOPE.json",
                      query_string={"api_key": api["tokens"]["city"]}), 404)


def test_an_idempotency_key_returns_the_first_request(api):
    client, before = api["client"], _cases(api)
    data = {**HERE, "api_key": api["tokens"]["street"], "description": "路灯坏了"}
    first = client.post(f"{V2}/requests.json", data=data, headers={"Idempotency-Key": "k-1"})
    again = client.post(f"{V2}/requests.json", data=data, headers={"Idempotency-Key": "k-1"})
    same = client.post(f"{V2}/requests.json", data=data)
    assert (first.status_code, again.status_code, same.status_code) == (201, 200, 200)
    ids = {r.get_json()[0]["service_request_id"] for r in (first, again, same)}
    assert len(ids) == 1 and _cases(api) == before + 1


@pytest.mark.parametrize(("change", "status", "says"), [
    ({"service_code": ""}, 400, "service_code"),
    ({"service_code": "99"}, 400, "service_code"),
    ({"lat": "north"}, 400, "lat"),
    ({"lat": "", "long": "", "address_string": ""}, 400, "location"),
    ({"description": "<b>x</b>"}, 400, "HTML"),
    ({"description": "长" * 4001}, 400, "4,000"),
    ({"lat": "23.105", "long": "113.335", "address_string": ""}, 403, "scope"),
    ({"api_key": "gg_wrong"}, 403, "api_key"),
    ({"api_key": ""}, 403, "api_key"),
])
def test_every_refusal_is_spec_shaped_and_writes_nothing(api, change, status, says):
    client, before = api["client"], _cases(api)
    data = {**HERE, "api_key": api["tokens"]["street"], **change}
    assert says in _error(client.post(f"{V2}/requests.json", data=data), status)
    assert _cases(api) == before


def test_get_requests_validates_its_window(api):
    client, key = api["client"], api["tokens"]["city"]
    for params in ({"start_date": "yesterday"}, {"start_date": "2025-01-01T00:00:00Z",
                                                 "end_date": "2025-06-01T00:00:00Z"},
                   {"status": "pending"}, {"service_code": "77"},
                   {"start_date": "2025-06-01T00:00:00Z", "end_date": "2025-05-01T00:00:00Z"}):
        _error(client.get(f"{V2}/requests.json", query_string={"api_key": key, **params}), 400)
    window = client.get(f"{V2}/requests.json", query_string={
        "api_key": key, "start_date": "2025-04-02T00:00:00+08:00",
        "end_date": "2025-06-30T00:00:00+08:00", "status": "closed"}).get_json()
    assert window and all(r["status"] == "closed" for r in window)
    assert all("2025-04-02" <= r["requested_datetime"][:10] <= "2025-06-30" for r in window)
    street = client.get(f"{V2}/requests.json", query_string={
        "api_key": api["tokens"]["street"], "start_date": "2025-04-01T00:00:00Z"}).get_json()
    assert street and all(r["address_id"].startswith(STREET[:9]) for r in street)


def test_a_key_is_rate_limited_and_a_revoked_key_refused(api):
    client, token = api["client"], api["tokens"]["limited"]
    with _settings(api, api_rate_per_minute=2):
        for _ in range(2):
            assert client.get(f"{V2}/requests/NOPE.json",
                              query_string={"api_key": token}).status_code == 404
        _error(client.get(f"{V2}/requests.json", query_string={"api_key": token}), 429)
    apikeys.revoke_key(api["store"].engine, "limited", actor=ADMIN)
    _error(client.get(f"{V2}/requests.json", query_string={"api_key": token}), 403)


def test_every_keyed_call_is_audited_and_the_chain_holds(api):
    trail = audit.read_trail(api["store"].engine)
    api_rows = trail[trail["action"] == "api"]
    assert (api_rows["username"].str.startswith("api:")).all() and len(api_rows) >= 5
    assert (trail["action"] == "refused").any()
    assert audit.verify(api["store"].engine).ok


def test_status_updates_append_to_the_timeline_or_are_refused(api):
    client, key = api["client"], api["tokens"]["street"]
    posted = client.post(f"{V2}/requests.json", data={**HERE, "api_key": key,
                                                      "description": "井盖缺失"})
    case_id = posted.get_json()[0]["service_request_id"]
    url = f"{V2}/requests/{case_id}/updates.json"
    early = client.post(url, data={"api_key": key, "event": "评价", "rating": "满意"})
    assert "评价须在" in _error(early, 400)
    assert "event" in _error(client.post(url, data={"api_key": key, "event": "复议"}), 400)
    assert "updated_datetime" in _error(client.post(url, data={
        "api_key": key, "event": "受理", "updated_datetime": "soon"}), 400)
    done = client.post(url, data={"api_key": key, "event": "受理"})
    assert done.status_code == 200, done.data
    assert done.get_json()[0]["status_notes"] == "受理"
    _error(client.post(url, data={"api_key": api["tokens"]["village"], "event": "答复"}), 403)
    _error(client.post(f"{V2}/requests/NOPE/updates.json",
                       data={"api_key": key, "event": "受理"}), 404)
    replied = client.post(url, data={"api_key": key, "event": "答复"}).get_json()[0]
    rated = client.post(url, data={"api_key": key, "event": "评价", "rating": "满意"})
    assert replied["status_notes"] == "答复" and rated.status_code == 200
    [got] = client.get(f"{V2}/requests/{case_id}.json", query_string={"api_key": key}).get_json()
    assert got["status_notes"] == "答复" and got["status"] == "open"


def test_the_spec_example_reads_get_spec_shaped_answers(api):
    client, key = api["client"], api["tokens"]["city"]
    # GET requests.json?start_date=2010-05-24T00:00:00Z&end_date=2010-06-24T00:00:00Z&status=open
    window = client.get(f"{V2}/requests.json", query_string={
        "api_key": key, "start_date": "2010-05-24T00:00:00Z", "end_date": "2010-06-24T00:00:00Z",
        "status": "open"})
    assert window.status_code == 200 and window.get_json() == []
    # GET requests/638344.json (no such case here)
    _error(client.get(f"{V2}/requests/638344.json", query_string={"api_key": key}), 404)
    # GET services.json?jurisdiction_id=city.gov (another city's jurisdiction)
    _error(client.get(f"{V2}/services.json", query_string={"jurisdiction_id": "city.gov"}), 404)
    assert len(client.get(f"{V2}/services.json?jurisdiction_id=guangzhou").get_json()) == 19
    _error(client.get(f"{V2}/services.xml"), 404)  # JSON only (discovery.json says so)


def test_an_oversized_body_and_a_busy_store_are_refused_spec_shaped(api, monkeypatch):
    import etl.intake
    from geo.storelock import StoreBusyError

    client, key, before = api["client"], api["tokens"]["street"], _cases(api)
    big = client.post(f"{V2}/requests.json", data={**HERE, "api_key": key,
                                                   "description": "长" * 30_000})
    assert "64 KB" in _error(big, 413)

    def busy(*_args, **_kwargs):
        raise StoreBusyError("数据库正被其他导入占用 / the store is busy")

    monkeypatch.setattr(etl.intake, "submit_case", busy)
    assert "稍后重试" in _error(client.post(f"{V2}/requests.json",
                                        data={**HERE, "api_key": key}), 503)
    assert _cases(api) == before
