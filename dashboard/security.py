"""Security headers on every response of the dashboard, CSP reports, and malformed callbacks.

flask-talisman (a maintained library) sets the headers on every Flask response — pages,
callbacks, assets, downloads, errors: a Content-Security-Policy, ``X-Frame-Options: DENY``
with ``frame-ancestors 'none'`` (no site may frame the dashboard), ``X-Content-Type-Options:
nosniff`` and ``Referrer-Policy: same-origin``.

The policy allows scripts from the app itself and, inline, only the scripts Dash writes into
its index page (the renderer start-up and any clientside callback), each by its SHA-256 hash
(:meth:`dash.Dash.csp_hashes`): nothing written into a page from data can run. Styles may be
inline (plotly, AG Grid and Leaflet set them from script; a style cannot run code), images may
come from the configured basemap's tile servers. Browsers post violations to
:data:`REPORT_PATH`, which logs them (a violation means a bug to fix, or an attack).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import dash
import flask
from flask_talisman import Talisman

from dashboard.map import BASEMAPS

REPORT_PATH = "/csp-report"
MAX_REPORT_BYTES = 16_384
log = logging.getLogger(__name__)


def content_security_policy(app: dash.Dash, *, basemap: str) -> dict[str, list[str]]:
    """The dashboard's CSP as directive → sources, for the inline scripts Dash holds now."""
    return {
        "default-src": ["'self'"],
        "script-src": ["'self'", *app.csp_hashes()],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *tile_sources(basemap)],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }


def tile_sources(basemap: str) -> list[str]:
    """The origins a basemap's tiles come from (``{s}`` expanded over its subdomains)."""
    spec = BASEMAPS.get(basemap)
    if not spec:
        return []
    url = spec["url"]
    subdomains = spec.get("subdomains") or [""]
    origins = []
    for sub in subdomains if "{s}" in url else [""]:
        parts = urlsplit(url.replace("{s}", sub))
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


def install(app: dash.Dash, *, basemap: str) -> Talisman:
    """Set the security headers on every response of ``app`` and add the report route."""
    talisman = Talisman(
        app.server,
        content_security_policy=content_security_policy(app, basemap=basemap),
        content_security_policy_report_uri=REPORT_PATH,
        frame_options="DENY",
        referrer_policy="same-origin",
        force_https=False,  # gridgov is served behind the city's own TLS proxy, or locally
        session_cookie_secure=False,  # nor does it decide the session cookie here
        x_content_type_options=True,
    )
    app.server.add_url_rule(REPORT_PATH, "csp_report", _report, methods=["POST"])
    guard_dispatch(app)

    @app.server.before_request
    def _current_hashes() -> None:
        # Dash adds inline scripts up to its first request (clientside callbacks of pages):
        # hash what the index page holds now (a few short strings; runs after Dash's setup)
        talisman.content_security_policy = content_security_policy(app, basemap=basemap)

    return talisman


def guard_dispatch(app: dash.Dash) -> None:
    """Refuse malformed callback requests with 400, and keep the page router's inputs typed.

    Every request to Dash's callback route is user input: a body that is not the shape the
    browser sends (an output string, lists of ``{id, property, value}``), or that names no
    callback of this app, is refused before Dash reads it. The page router's location is
    made the nearest valid one (a path that is not text becomes ``/``, a relative one gets
    its leading slash, a search that is not text becomes empty); the pages themselves then
    parse their parameters (:meth:`dashboard.query.ViewState.parse`).
    """
    dispatch = (app.config.requests_pathname_prefix or "/") + "_dash-update-component"

    @app.server.before_request
    def _check_dispatch() -> flask.Response | None:
        if flask.request.path != dispatch or flask.request.method != "POST":
            return None
        body = flask.request.get_json(silent=True)
        if body is None:
            return None  # not JSON: Dash answers 400 itself
        if not _well_formed(body) or body["output"] not in app.callback_map:
            return flask.Response("请求格式无效 / malformed callback request", status=400,
                                  mimetype="text/plain; charset=utf-8")
        for item in body["inputs"] + body.get("state", []):
            if isinstance(item, dict) and item.get("id") == "_pages_location":
                item["value"] = _location(item.get("property"), item.get("value"))
        return None


def _well_formed(body: object) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return False
    outputs = body.get("outputs")
    if not isinstance(outputs, dict | list):
        return False
    items = body.get("inputs"), body.get("state", [])
    if not all(isinstance(group, list) for group in items):
        return False
    for group in items:
        for item in group:
            if isinstance(item, list):  # pattern-matching inputs: a list of items
                if not all(isinstance(i, dict) and "id" in i and "property" in i for i in item):
                    return False
            elif not (isinstance(item, dict) and "id" in item and "property" in item):
                return False
    changed = body.get("changedPropIds", [])
    return isinstance(changed, list) and all(isinstance(c, str) for c in changed)


def _location(prop: object, value: object) -> object:
    if prop == "pathname":
        if not isinstance(value, str):
            return "/"
        return value if value.startswith("/") else "/" + value
    if prop == "search":
        return value if isinstance(value, str) else ""
    return value


def _report() -> flask.Response:
    body = flask.request.stream.read(MAX_REPORT_BYTES)
    log.warning("CSP violation reported: %s", body.decode("utf-8", "replace"))
    return flask.Response(status=204)
