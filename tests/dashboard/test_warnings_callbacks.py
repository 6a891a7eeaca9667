"""The 预警 page's callbacks take any value a client can post, and answer without a traceback."""

from __future__ import annotations

import pytest

from dashboard.state import STORE_KEY
from layers.warnings.run import run_warnings
from layers.warnings.storage import warnings_in
from tests.dashboard.dash_client import DashClient

HOSTILE = (None, "", "<script>alert(1)</script>", "440100000000' OR 1=1 --", 12, [], {},
           "W" + "0" * 19, {"unit": "999999999999"}, {"unit": ["440103000000"]})


@pytest.fixture(scope="module")
def client(dash_app, demo_accounts):
    """The session's app (one per process), logged in as the city account, with warnings."""
    store = dash_app.server.config[STORE_KEY]
    run_warnings(store)
    client = DashClient(dash_app.server.test_client())
    client.login("demo-city", demo_accounts["password"])
    return client, store


def test_every_warnings_callback_survives_hostile_values(client):
    dash_client, _store = client
    callbacks = [c for c in dash_client.callbacks()
                 if any(str(i["id"]).startswith("warn-") for i in c.inputs)]
    assert len(callbacks) >= 6
    for callback in callbacks:
        for value in HOSTILE:
            values = {f"{spec['id']}.{spec['property']}": value
                      for spec in (*callback.inputs, *callback.state)}
            response = dash_client.call(callback, values)
            assert response.status_code in (200, 204, 400, 403, 404), (callback.name, value)
            assert b"Traceback" not in response.data


def test_a_state_change_outside_the_scope_is_refused(client):
    dash_client, store = client
    frame = warnings_in(store)
    inside = frame[frame["unit_code"].str.startswith("440103")].iloc[0]
    save = next(c for c in dash_client.callbacks() if c.name == "warn-saved.data")
    values = {"warn-save.n_clicks": 1, "warn-selected.data": inside["warning_id"],
              "warn-next-state.value": "seen",
              "warn-note.value": "", "warn-query.data": {"unit": "440104000000"},
              "warn-saved.data": 0}
    response = dash_client.call(save, values)
    assert response.status_code == 200 and "未找到预警" in response.get_data(as_text=True)
    assert warnings_in(store)["state"][frame["warning_id"] == inside["warning_id"]].iloc[0] \
        == inside["state"]
