"""The Dash app factory and server.

``create_app(engine, settings)`` builds a multi-page app (pages in ``dashboard/pages``,
static files in the top-level ``assets/``) around a store; nothing is read from the store
until a page is requested. ``serve`` runs it behind waitress (a production WSGI server), or
the Flask development server with ``debug=True``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import dash
from sqlalchemy.engine import Engine

from geo.settings import Settings

PAGES_FOLDER = Path(__file__).parent / "pages"
ASSETS_FOLDER = Path(__file__).resolve().parent.parent / "assets"


def create_app(engine: Engine, settings: Settings) -> dash.Dash:
    """Build the dashboard for a store.

    Parameters
    ----------
    engine
        The store (must be initialised: ``gridgov init``).
    settings
        Basemap, deadlines, thresholds; see :class:`geo.settings.Settings`.

    Returns
    -------
    dash.Dash
        The app; its Flask server is ``app.server``.
    """
    from dashboard import shell, state

    state.register(engine, settings)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_FOLDER),
        assets_folder=str(ASSETS_FOLDER),
        title="广州市信访网格化治理",
        update_title="加载中…",
        suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = shell.layout
    return app


def warm_caches(engine: Engine, settings: Settings) -> None:
    """Load what the first page view needs (the in-memory case table, map shapes, filter values).

    Run in a background thread by :func:`serve`, so the server answers at once and the first
    visitor does not pay for reading a million cases.
    """
    from dashboard import map as maps
    from dashboard import shell
    from layers import views
    from layers.casedata import case_table
    from layers.coverage import compute_coverage
    from layers.filters import Filters
    from layers.metrics import compute_metrics

    case_table(engine, settings=settings)
    for level in ("district", "street", "village"):
        maps.web_units(engine, level)
    maps.unit_layer(engine, views.CITY_CODE, metric="on_time_completion", filters=Filters(),
                    settings=settings)
    views.monthly_trend(engine, views.CITY_CODE, settings=settings)
    for level in ("street", "village"):
        compute_metrics(engine, level=level, settings=settings)
    for level in ("district", "street", "village"):
        compute_coverage(engine, level=level, settings=settings)
    shell.cached_info(engine)
    shell.cached_options(engine)


def serve(engine: Engine, settings: Settings, *, host: str = "127.0.0.1", port: int = 8050,
          debug: bool = False) -> None:
    """Run the dashboard: waitress unless ``debug`` (then Dash's reloading dev server)."""
    app = create_app(engine, settings)
    threading.Thread(target=warm_caches, args=(engine, settings), daemon=True,
                     name="gridgov-warm").start()
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    waitress_serve(app.server, host=host, port=port, threads=8)
