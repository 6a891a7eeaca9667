"""The locust users of ``bench/bench_load.py``: officials replaying dashboard sessions.

Not run by hand: ``bench_load.py`` writes a plan (accounts, the units and cases in each
account's scope, filter values) and starts ``locust -f`` on this file, headless, against a
``gridgov serve`` on 127.0.0.1. Each simulated user logs in through the real login form as its
own account (城市、区、街道、网格员 in the plan's mix: each grid worker its own village, each
street account its own street; :mod:`bench.load_mix`) and then walks a session of its
role, one view per task at a fixed rate per user (``constant_throughput``): the landing view,
drill-downs, street and village lists, a filter, case pages and, now and then, a CSV export.

A view is what the browser does on navigation inside the app: the page router's callback,
then the page's data callbacks at once (Dash fires them together; here greenlets): the list is
``bench/view_callbacks.py``, which a browser test checks against what Chromium really sends.
Each callback is one
locust request named ``cb <output>``; the whole view is reported as ``VIEW <name>`` (router
plus the slowest callback), which is what the p95 per view is computed from, and once more
as ``ALLVIEWS all views`` (the p95 over every view). The run stops
after ``GRIDGOV_LOAD_MAX_REQUESTS`` requests even before ``--run-time`` ends.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

from gevent.pool import Group
from locust import FastHttpUser, constant_throughput, events, task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import view_callbacks as sent  # noqa: E402
from bench.load_mix import role_and_account, roles  # noqa: E402
from tests.dashboard.dash_client import DashClient  # noqa: E402
from tests.dashboard.http_client import HttpClient  # noqa: E402

PLAN = json.loads(Path(os.environ["GRIDGOV_LOAD_PLAN"]).read_text(encoding="utf-8"))
MAX_REQUESTS = int(os.environ.get("GRIDGOV_LOAD_MAX_REQUESTS", "0"))
PATHS = {"city": "/", "street": "/street", "village": "/village"}
_sent = itertools.count(1)
_users = itertools.count(0)
_logged_in = itertools.count(1)
_callbacks: dict[str, object] = {}


ROLES = roles(PLAN["mix"])


@events.request.add_listener
def _bound(**_kwargs) -> None:  # noqa: ANN003 - locust's event signature
    """Stop the whole run once the request budget is spent."""
    if MAX_REQUESTS and next(_sent) == MAX_REQUESTS:
        runner = _environment.runner if _environment else None
        if runner is not None:
            runner.quit()


_environment = None


@events.init.add_listener
def _keep(environment, **_kwargs) -> None:  # noqa: ANN001, ANN003
    global _environment  # noqa: PLW0603 - locust hands the environment to a hook only
    _environment = environment


class Official(FastHttpUser):
    """One logged-in official replaying the sessions of their role.

    A ``FastHttpUser`` (geventhttpclient), not an ``HttpUser`` (requests): the load generator
    shares the server's two cores, and every core-second it spends is one the server does not
    get. ``concurrency`` is the connections of one user: a view's callbacks go at once, as
    Chromium sends them.
    """

    wait_time = constant_throughput(PLAN["views_per_user_s"])
    network_timeout = 120.0
    connection_timeout = 120.0
    concurrency = 12

    def on_start(self) -> None:
        number = next(_users)
        self.role, account = role_and_account(number, ROLES)
        self.random = random.Random(number)  # the same user draws the same units every run
        accounts = PLAN["accounts"][self.role]
        self.scope = accounts[account % len(accounts)]  # its own, unless units ran out
        self.dash = self._client("login")
        response = self.dash.login(self.scope["username"], PLAN["password"])
        if response.status_code != 200 or 'name="password"' in response.get_data(as_text=True):
            raise RuntimeError(f"login failed for {self.scope['username']}")
        if not _callbacks:
            _callbacks.update({cb.name: cb for cb in self._client("dependencies").callbacks()})
        self.steps = self._session()
        runner = self.environment.runner
        if next(_logged_in) == getattr(runner, "target_user_count", None):
            runner.stats.reset_all()  # everyone is in: measure views, not the argon2 logins

    def _client(self, label: str) -> DashClient:
        http = HttpClient(self.client, "", timeout=None)  # the user class sets it
        http.label = label
        return DashClient(http)

    @task
    def next_step(self) -> None:
        kind, name, page, search = next(self.steps)
        if kind == "export":
            self._client(f"EXPORT {name}").http.get(f"/download/{page}/cases.csv{search}")
        elif kind == "case":
            self._case_view(name, search)
        else:
            self._view(name, page, search)

    def _case_view(self, name: str, case_id: str) -> None:
        started = time.perf_counter()
        response = self._client("cb _pages_content.children (case)").call(
            _callbacks["_pages_content.children"],
            {"_pages_location.pathname": "/case/" + case_id, "_pages_location.search": ""})
        failure = None if response.status_code == 200 else RuntimeError(
            f"HTTP {response.status_code}")
        self._report(name, started, failure)

    def _report(self, name: str, started: float, failure: Exception | None) -> None:
        """The view as one sample under its own name, and once more among all views."""
        ms = 1000 * (time.perf_counter() - started)
        for kind, label in (("VIEW", f"{self.role} {name}"), ("ALLVIEWS", "all views")):
            events.request.fire(request_type=kind, name=label, response_time=ms,
                                response_length=0, exception=failure, context={})

    def _view(self, name: str, page: str, search: str) -> None:
        started = time.perf_counter()
        failure = None
        router = self._client(f"cb {sent.ROUTER}").call(
            _callbacks[sent.ROUTER],
            {"_pages_location.pathname": PATHS[page], "_pages_location.search": search})
        if router.status_code != 200:
            failure = RuntimeError(f"router HTTP {router.status_code}")
        query = {"view-query.data": {"page": page, "search": search}}
        group = Group()
        results = []
        for output in (*sent.SHARED, *sent.PAGES[page]):
            group.spawn(lambda output=output: results.append(
                self._client(f"cb {output}").call(_callbacks[output], query).status_code))
        group.join()
        if failure is None and any(code not in (200, 204) for code in results):
            failure = RuntimeError(f"callback HTTP {sorted(set(results))}")
        self._report(name, started, failure)

    def _session(self):  # noqa: ANN202 - an endless iterator of steps
        """The role's session, over and over with other units and cases each round."""
        scope = self.scope
        page = {"city": "city", "district": "city", "street": "street",
                "grid_worker": "village"}[self.role]
        unit = scope["unit"]
        category = PLAN["categories"]
        while True:
            yield "view", "landing", page, _search(unit)
            for child in self.random.sample(scope["children"], min(2, len(scope["children"]))):
                yield "view", "drill-down", scope["child_page"], _search(child)
            for street in self.random.sample(scope["streets"], min(1, len(scope["streets"]))):
                yield "view", "street list", "street", _search(street)
            for village in self.random.sample(scope["villages"], min(1, len(scope["villages"]))):
                yield "view", "grid worker view", "village", _search(village)
            yield ("view", "filter", page,
                   _search(unit, f"category={self.random.choice(category)}&from={PLAN['window_from']}"))
            for case_id in self.random.sample(scope["cases"], min(2, len(scope["cases"]))):
                yield "case", "case page", "case", case_id
            if self.random.random() < PLAN["export_share"] and scope["export_unit"]:
                yield "export", "cases.csv", scope["export_page"], _search(scope["export_unit"])


def _search(unit: str, extra: str = "") -> str:
    parts = [f"unit={unit}"] if unit != PLAN["city_code"] else []
    if extra:
        parts.append(extra)
    return "?" + "&".join(parts) if parts else ""
