"""A served dashboard (over real HTTP) behind the Flask test client's interface.

:class:`tests.dashboard.dash_client.DashClient` drives an app through ``app.test_client()``;
this adapter gives it a ``requests.Session`` on a running server instead (``requests`` comes
with Dash), so the same login and callback code talks to ``gridgov serve`` in another
process: the multi-worker tests use it, and ``bench/bench_load.py`` with locust's
``FastHttpSession`` (geventhttpclient: the same ``get``/``post`` and ``name=``, its cookies in
``cookiejar``, its time-out set on the user class), which cost the load generator less than half a
``requests.Session``'s CPU (4 against 9 CPU-seconds over one 120 s run) on a machine whose
cores the server needs.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any


class HttpResponse:
    """The parts of a Flask test response that the Dash client reads."""

    def __init__(self, response: Any) -> None:  # noqa: ANN401 - a requests.Response
        self.raw = response
        self.status_code = response.status_code
        self.data = response.content
        self.headers = response.headers

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.raw.text if as_text else self.data

    def get_json(self) -> Any:  # noqa: ANN401 - JSON
        return json.loads(self.data)


class HttpClient:
    """``get``/``post``/``get_cookie`` on a running server, as the Flask test client has them.

    ``label`` names the next requests (locust's ``name=``: one line per view in its report).
    """

    def __init__(self, session: Any, base: str = "", *,  # noqa: ANN401
                 timeout: float | None = 60.0) -> None:
        self.session = session
        self.base = base
        self.timeout = timeout
        """Seconds per request; None for a session that sets its own (``FastHttpSession``)."""
        self.label: str | None = None

    def _extra(self) -> dict:
        extra: dict[str, Any] = {"name": self.label} if self.label else {}
        if self.timeout is not None:
            extra["timeout"] = self.timeout
        return extra

    def get(self, path: str, **kwargs: Any) -> HttpResponse:  # noqa: ANN401
        return HttpResponse(self.session.get(self.base + path, **self._extra(), **kwargs))

    def post(self, path: str, data: Any = None, content_type: str | None = None,  # noqa: ANN401
             headers: dict | None = None) -> HttpResponse:
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        return HttpResponse(self.session.post(self.base + path, data=data, headers=headers,
                                              **self._extra()))

    def get_cookie(self, name: str) -> SimpleNamespace | None:
        cookies = getattr(self.session, "cookies", None)  # requests; locust's fast client: cookiejar
        value = cookies.get(name) if cookies is not None else next(
            (cookie.value for cookie in self.session.cookiejar if cookie.name == name), None)
        return SimpleNamespace(value=value) if value else None
