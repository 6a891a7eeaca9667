"""The grid worker view (网格员视图) lists the most urgent cases and says where the rest are."""

from __future__ import annotations

import re

from layers import views
from tests.dashboard.dash_client import DashClient


def _village_body(dash_app, demo_accounts) -> tuple[str, str]:
    client = DashClient(dash_app.server.test_client())
    client.login("demo-grid", demo_accounts["password"])
    body = next(c for c in client.callbacks() if c.name == "village-body.children")
    village = demo_accounts["grid_worker"].scope.code
    response = client.call(body, {"view-query.data": {"page": "village",
                                                      "search": f"?unit={village}"}})
    assert response.status_code == 200
    return response.get_data(as_text=True), village


def test_a_list_cut_at_its_limit_says_how_many_more_and_where(dash_app, demo_accounts,
                                                              monkeypatch):
    full, _village = _village_body(dash_app, demo_accounts)
    total = int(re.search(r"未办结案件（(\d+) 件", full).group(1))
    assert total > 3 and "全部请导出案件表" not in full  # the demo village fits the limit
    monkeypatch.setitem(views.VILLAGE_ROWS, "open", 3)
    cut, _village = _village_body(dash_app, demo_accounts)
    assert cut.count('"case-item urgency-') == 3
    assert f"以上为最紧急的 3 件，另有 {total - 3} 件；全部请导出案件表查看。" in cut
    assert f"未办结案件（{total} 件" in cut  # the heading counts them all
