"""Call a Dash app's callbacks the way the browser does, without a browser.

Dash serves every callback of every page through one route (``/_dash-update-component``), with
the wiring published at ``/_dash-dependencies``. :class:`DashClient` reads that wiring and
posts any inputs to any callback through the Flask test client (cookies kept, so a logged-in
session stays logged in). Tests use it to send crafted values to every callback (the
parameter fuzz test) and to call every callback as every role (the scope sweep); because the
list comes from the app itself, a callback added later is exercised without editing the tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CSRF_COOKIE = "_csrf_token"


@dataclass(frozen=True)
class Callback:
    """One server-side callback as ``/_dash-dependencies`` describes it."""

    output: str
    outputs: tuple[dict, ...]
    inputs: tuple[dict, ...]
    state: tuple[dict, ...]

    @property
    def name(self) -> str:
        """A readable name: the first output id and property."""
        first = self.outputs[0]
        return f"{first['id']}.{first['property']}"


class DashClient:
    """A browser-less Dash client over a Flask test client."""

    def __init__(self, flask_client) -> None:  # noqa: ANN001 - flask.testing.FlaskClient
        self.http = flask_client

    def login(self, username: str, password: str):  # noqa: ANN201 - a Flask test response
        """Log in through the real login form (its CSRF token included); return the response.

        Afterwards the client holds the session cookie, and fetching the page (``/``) sets the
        CSRF cookie that :meth:`call` sends back as ``X-CSRFToken``, as Dash's renderer does.
        """
        form = self.http.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        response = self.http.post("/login", data={"username": username, "password": password,
                                                  "csrf_token": token})
        self.http.get("/_dash-layout")
        return response

    def logout(self):  # noqa: ANN201 - a Flask test response
        """Log out with the CSRF token, as the header's 退出 button does."""
        return self.http.post("/logout", data={"csrf_token": self.csrf_token() or ""})

    def csrf_token(self) -> str | None:
        """The CSRF cookie the server last set (None before login)."""
        cookie = self.http.get_cookie(CSRF_COOKIE)
        return cookie.value if cookie else None

    def callbacks(self) -> list[Callback]:
        """Every server-side callback of the app (clientside ones have no server part)."""
        response = self.http.get("/_dash-dependencies")
        if response.status_code != 200:
            return []
        out = []
        for spec in response.get_json():
            if spec.get("clientside_function"):
                continue
            out.append(Callback(output=spec["output"], outputs=tuple(_outputs(spec["output"])),
                                inputs=tuple(spec["inputs"]), state=tuple(spec["state"])))
        return out

    def call(self, callback: Callback, values: dict[str, Any],
             triggered: list[str] | None = None):  # noqa: ANN201 - a Flask test response
        """Post one callback with ``values`` ({"id.property": value}); missing ones are None.

        ``triggered`` names the changed props (default: the first input).
        """
        def item(spec: dict) -> dict:
            key = f"{spec['id']}.{spec['property']}"
            return {"id": spec["id"], "property": spec["property"], "value": values.get(key)}

        body = {
            "output": callback.output,
            "outputs": [dict(o) for o in callback.outputs] if len(callback.outputs) > 1
            else dict(callback.outputs[0]),
            "inputs": [item(spec) for spec in callback.inputs],
            "state": [item(spec) for spec in callback.state],
            "changedPropIds": triggered or [
                f"{callback.inputs[0]['id']}.{callback.inputs[0]['property']}"],
        }
        return self.post_body(body)

    def post_body(self, body: Any):  # noqa: ANN201 - a Flask test response
        """Post any body (crafted ones included) to the callback route, with the CSRF header."""
        headers = {"X-CSRFToken": self.csrf_token()} if self.csrf_token() else {}
        return self.http.post("/_dash-update-component", data=json.dumps(body),
                              content_type="application/json", headers=headers)


def _outputs(output: str) -> list[dict]:
    """Split Dash's output string ("..a.b...c.d.." or "a.b") into {id, property} items."""
    text = output.split("@", 1)[0]
    parts = text.strip(".").split("...") if text.startswith("..") else [text]
    out = []
    for part in parts:
        component, prop = part.rsplit(".", 1)
        out.append({"id": component, "property": prop})
    return out
