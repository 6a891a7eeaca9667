"""The street view's 待更正落格: cases an address placed only to the street, corrected by the office.

The demo store is copied and given two cases whose address names the street but no village
(the ETL leaves them at street level with the reason); the street account lists them, picks a
village of its street, and the correction is an event, an audit row and the case's new place.
A village of another street, or a case of another street, is refused and changes nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from etl.ingest import ingest_cases
from geo import audit, schema
from geo.store import Store
from layers.units import units_frame
from tests.dashboard.conftest import APP_SETTINGS
from tests.dashboard.dash_client import DashClient
from tests.dashboard.stores import serving_copy

OTHER_VILLAGE = "440104002201"
"""A village of another district's street (never a valid choice for the street account)."""


@pytest.fixture(scope="module")
def placed(dash_app, demo_store, demo_accounts, tmp_path_factory):
    """A copy of the demo store with two street-level cases in the street account's street."""
    folder = tmp_path_factory.mktemp("placement")
    with serving_copy(dash_app, demo_store, folder / "store.db", APP_SETTINGS) as store:
        street = demo_accounts["street"].scope_code
        units = units_frame(store)
        district = units.loc[units.loc[street, "parent_code"], "name"]
        prefix = f"{district}{units.loc[street, 'name']}"
        csv = folder / "cases.csv"
        csv.write_text("信访件编号,登记时间,地址,信访人电话\n"
                       f"PLACE-1,2025-06-01 09:00,{prefix}人民路8号 电话13812345678,13812345678\n"
                       f"PLACE-2,2025-06-02 09:00,{prefix}中山路1号,\n", encoding="utf-8")
        ingest_cases(store, csv)
        yield {"store": store, "street": street, "app": dash_app,
               "password": demo_accounts["password"], "accounts": demo_accounts}


def _client(placed, role: str):
    client = DashClient(placed["app"].server.test_client())
    client.login(placed["accounts"][role].username, placed["password"])
    return client, {cb.name: cb for cb in client.callbacks()}


def _case(store: Store, case_id: str):
    c = schema.cases.c
    with store.engine.connect() as conn:
        return conn.execute(sa.select(c.village_code, c.attach_method, c.attach_level)
                            .where(c.case_id == case_id)).one()


def test_the_street_office_lists_and_corrects_a_street_level_case(placed):
    store, street = placed["store"], placed["street"]
    client, callbacks = _client(placed, "street")
    query = {"page": "street", "search": f"?unit={street}"}
    listed = client.call(callbacks["street-placement.children"], {"view-query.data": query})
    text = listed.get_data(as_text=True)
    assert listed.status_code == 200
    assert "PLACE-1" in text and "PLACE-2" in text and "共 2 件" in text
    assert "13812345678" not in text and "138****5678" in text  # the address is masked
    choices = client.call(callbacks["placement-village.options"],
                          {"view-query.data": query, "placement-case.value": "PLACE-1"},
                          ["placement-case.value"])
    assert choices.status_code == 200
    options = choices.get_json()["response"]["placement-village"]["options"]
    codes = [o["value"] for o in options]
    assert codes and all(code.startswith(street[:9]) for code in codes)
    correct = callbacks["placement-result.children"]
    values = {"placement-submit.n_clicks": 1, "placement-case.value": "PLACE-1",
              "placement-village.value": OTHER_VILLAGE, "placement-note.value": "核实",
              "view-query.data": query}
    assert client.call(correct, values, ["placement-submit.n_clicks"]).status_code == 403
    assert _case(store, "PLACE-1") == (None, "address", "street")
    done = client.call(correct, {**values, "placement-village.value": codes[0]},
                       ["placement-submit.n_clicks"])
    assert done.status_code == 200 and "已将 PLACE-1 落到村居" in done.get_data(as_text=True)
    assert _case(store, "PLACE-1") == (codes[0], "corrected", "village")
    trail = audit.read_trail(store.engine)
    row = trail[trail["action"] == "correct"].iloc[-1]
    assert (row["username"], row["case_ids"], row["role"]) == (
        placed["accounts"]["street"].username, "PLACE-1", "street")
    assert audit.verify(store.engine).ok
    e = schema.case_event.c
    with store.engine.connect() as conn:
        actor = conn.execute(sa.select(e.actor).where(e.case_id == "PLACE-1",
                                                      e.event == "corrected")).scalar_one()
    assert actor == placed["accounts"]["street"].username
    after = client.call(callbacks["street-placement.children"], {"view-query.data": query})
    assert "PLACE-1" not in after.get_data(as_text=True)
    # a corrected case is no longer in the queue: correcting it again is refused
    again = client.call(correct, {**values, "placement-village.value": codes[0]},
                        ["placement-submit.n_clicks"])
    assert again.status_code == 403


def test_a_grid_worker_may_not_list_or_correct(placed):
    client, callbacks = _client(placed, "grid_worker")
    query = {"page": "street", "search": f"?unit={placed['street']}"}
    assert client.call(callbacks["street-placement.children"],
                       {"view-query.data": query}).status_code == 403
    values = {"placement-submit.n_clicks": 1, "placement-case.value": "PLACE-2",
              "placement-village.value": OTHER_VILLAGE, "view-query.data": query}
    assert client.call(callbacks["placement-result.children"], values,
                       ["placement-submit.n_clicks"]).status_code == 403
    assert _case(placed["store"], "PLACE-2") == (None, "address", "street")
