"""Security headers on every response of the dashboard, and where CSP violations are reported.

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

    @app.server.before_request
    def _current_hashes() -> None:
        # Dash adds inline scripts up to its first request (clientside callbacks of pages):
        # hash what the index page holds now (a few short strings; runs after Dash's setup)
        talisman.content_security_policy = content_security_policy(app, basemap=basemap)

    return talisman


def _report() -> flask.Response:
    body = flask.request.stream.read(MAX_REPORT_BYTES)
    log.warning("CSP violation reported: %s", body.decode("utf-8", "replace"))
    return flask.Response(status=204)
