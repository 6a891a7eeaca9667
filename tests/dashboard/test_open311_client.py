"""A third-party Open311 client (georeport, from PyPI) against the live test server, then the
case it helped create in the village's list of the running app within 60 s.

georeport (0.3.1) only reads: services, service definitions and requests, and it never sends an
``api_key``. So it lists and describes the services, and its keyless read of requests gets the
spec's 403; the POST and the keyed reads are made with ``requests`` exactly as the GeoReport v2
spec describes them (form-encoded POST, ``api_key`` parameter).
"""

from __future__ import annotations

import time

import pytest
import requests

from geo import apikeys, audit
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.dash_client import DashClient
from tests.dashboard.stores import serving_copy

georeport = pytest.importorskip("georeport")


@pytest.fixture(scope="module")
def served(dash_app, demo_store, demo_accounts, tmp_path_factory):
    path = tmp_path_factory.mktemp("open311-client") / "store.db"
    with serving_copy(dash_app, demo_store, path, APP_SETTINGS) as store:
        village = demo_accounts["grid_worker"].scope_code
        _key, token = apikeys.add_key(store.engine, name="hotline", scope_code=village[:9] + "000",
                                      actor=audit.Actor("cli:test", "admin"))
        yield {"store": store, "token": token, "village": village}


def test_a_pypi_client_and_the_spec_requests_against_a_live_server(live_url, served, dash_app,
                                                                    demo_accounts):
    root = f"{live_url}/open311/v2"
    client = georeport.GeoReport(root)
    services = client.get_service_list()
    assert len(services) == 19 and {"service_code", "service_name"} <= set(services[0])
    assert client.get_service_definition("03") == {"service_code": "03", "attributes": []}
    with pytest.raises(requests.HTTPError) as keyless:
        client.get_service_requests(status="open")
    assert keyless.value.response.status_code == 403
    assert keyless.value.response.json()[0]["code"] == 403

    village = served["village"]
    form = {"api_key": served["token"], "jurisdiction_id": "guangzhou", "service_code": "03",
            "address_string": f"{_unit_name(served['store'], village)}", "first_name": "三",
            "last_name": "张", "phone": "13700007777", "description": "小区围墙开裂，有倒塌风险"}
    posted = requests.post(f"{root}/requests.json", data=form,
                           headers={"Idempotency-Key": "hotline-0001"}, timeout=10)
    assert posted.status_code == 201, posted.text
    case_id = posted.json()[0]["service_request_id"]
    again = requests.post(f"{root}/requests.json", data=form,
                          headers={"Idempotency-Key": "hotline-0001"}, timeout=10)
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == case_id
    [got] = requests.get(f"{root}/requests/{case_id}.json",
                         params={"api_key": served["token"]}, timeout=10).json()
    assert got["address_id"] == village and got["status"] == "open"

    dash = DashClient(dash_app.server.test_client())
    dash.login(demo_accounts["grid_worker"].username, demo_accounts["password"])
    body = next(c for c in dash.callbacks() if c.name == "village-body.children")
    deadline = time.monotonic() + 60
    while True:  # current within a minute: here at the first ask, as the table refreshes
        answer = dash.call(body, {"view-query.data": {"page": "village",
                                                      "search": f"?unit={village}"}})
        if case_id in answer.get_data(as_text=True):
            break
        assert time.monotonic() < deadline, "the API's case is not in the village list"
        time.sleep(0.5)


def _unit_name(store, code: str) -> str:  # noqa: ANN001 - a Store
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT name FROM grid_unit WHERE code = :c"),
                            {"c": code}).scalar_one()
