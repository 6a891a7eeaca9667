"""The server callbacks a browser sends when it opens a view inside the app (一次视图).

``bench/locust_sessions.py`` replays exactly these, after the page router, for every simulated
view; ``tests/dashboard/test_browser_requests.py`` opens each view in a real Chromium and
checks that the browser sends these and nothing else, so the load test cannot drift from what
a user's browser costs the server. Each name is a callback's first output (``id.property``).
"""

from __future__ import annotations

ROUTER = "_pages_content.children"
"""The page router: its answer (the page's layout) comes before the page's callbacks."""

SHARED = ("map-units.data", "shell-data-label.children")
"""Sent by every view with a map: the choropleth and the header (data label, navigation)."""

PAGES: dict[str, tuple[str, ...]] = {
    "city": ("city-kpis.children", "city-trend.figure", "city-peers.children",
             "city-two-strong.children", "city-warnings.children"),
    "street": ("street-body-side.children", "street-placement.children",
               "street-warnings.children"),
    "village": ("village-body.children", "village-warnings.children"),
}
"""Each view's own data callbacks, sent at once with :data:`SHARED` when its layout arrives."""
