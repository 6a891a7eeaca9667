"""The Dash app factory and server.

``create_app(store)`` builds a multi-page app (pages in ``dashboard/pages``, static files in
the top-level ``assets/``) around one :class:`geo.store.Store`, kept on the Flask server's
config; nothing is read from the store until a page is requested. Every request but the login
page, static files and the Open311 API (:mod:`dashboard.open311`, which has its own API keys)
needs a logged-in session (:mod:`dashboard.auth`), and every page,
callback and download resolves what it shows against the session's scope
(:mod:`dashboard.access`). The app refuses to be built with the development ID salt outside
demo mode (:func:`geo.accounts.check_serving`). ``serve`` runs it behind
waitress (one process), gunicorn (several processes sharing the warmed case table:
:mod:`dashboard.workers`), or the Flask development server with ``debug=True``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import dash

from geo.store import Store

PAGES_FOLDER = Path(__file__).parent / "pages"
WAITRESS_CONNECTIONS = 1000
"""Open connections the single-process server accepts (gunicorn's gthread default too)."""
ASSETS_FOLDER = Path(__file__).resolve().parent.parent / "assets"


def create_app(store: Store) -> dash.Dash:
    """Build the dashboard for a store.

    Parameters
    ----------
    store
        The store (must be initialised: ``gridgov init``), with its validated settings.

    Returns
    -------
    dash.Dash
        The app; its Flask server is ``app.server``.
    """
    from dashboard import (
        access,
        auth,
        downloads,
        jobs,
        open311,
        report,
        security,
        shell,
        state,
        warning_downloads,
    )
    from geo.accounts import check_serving

    check_serving(store.engine, store.settings)
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
    state.install(app.server, store)
    app.layout = shell.layout
    auth.install(app.server, store)
    access.install(app.server)
    downloads.register(app.server)
    jobs.install(app.server)
    open311.register(app.server)
    report.register(app.server)
    security.install(app, basemap=store.settings.basemap)
    warning_downloads.register(app.server)
    return app


def warm_caches(store: Store) -> None:
    """Load what the first page view needs (the columnar case table, map shapes, coverage).

    Run in a background thread by :func:`serve`, so the server answers at once and the first
    visitor does not pay for reading a million cases. Not the ETL's attach index (the first
    live case, Open311 or QR, builds it): on the real grid it holds about 160 MB, which a
    server without live intake should not carry (docs/benchmarks.md, case state).
    """
    from dashboard import map as maps
    from geo.memory import release_free_memory
    from layers import views
    from layers.coverage import compute_coverage
    from layers.filters import Filters
    from layers.metrics import compute_metrics
    from layers.strengths import two_strengths
    from layers.units import children_of

    for level in ("district", "street", "village"):
        maps.web_units(store, level)
    maps.unit_layer(store, views.CITY_CODE, metric="on_time_completion", filters=Filters())
    for code in (views.CITY_CODE, *children_of(store, views.CITY_CODE, level="district")["code"]):
        views.monthly_trend(store, code)  # the city and each district's morning view:
        two_strengths(store, code, filters=Filters())  # their trend and 两强 (~0.1 s each)
    views.data_info(store)
    for level in ("street", "village"):
        compute_metrics(store, level=level)
    for level in ("district", "street", "village"):
        compute_coverage(store, level=level)
    views.station_table(store)  # every street view lists its villages without a station
    views.inner_points(store, "village")  # every grid worker view lists its nearest stations
    from layers.warnings.storage import all_warnings

    all_warnings(store)  # every view shows its warnings
    import gc

    gc.collect()  # the warm-up's frames and geometries, then the heap, back to the OS
    release_free_memory()


def serve(store: Store, *, host: str = "127.0.0.1", port: int = 8050,
          debug: bool = False, workers: int = 1) -> None:
    """Run the dashboard: one waitress process, gunicorn workers, or (``debug``) Dash's dev server.

    One process (``workers=1``, or gunicorn missing): the caches warm in a background thread,
    so the server answers at once, and the warnings watcher runs beside it. Several
    (:mod:`dashboard.workers`): the master warms the caches first, then forks the workers, which
    share the warmed case table; the watcher runs once, in the master. The watcher runs the
    early warnings whenever the store version moves (after every ingest; the ETL cannot call
    the layers) and then stays still for a minute (live intake moves it every few seconds: one
    run for the burst), or at the latest ten minutes after the first change.
    """
    from geo.memory import unpool_large_arrays
    from layers.warnings.watcher import WarningWatcher

    unpool_large_arrays()  # a long-lived server: freed query arrays go back to the OS
    app = create_app(store)
    if workers > 1 and not debug:
        from dashboard import workers as multi

        if multi.gunicorn_available():
            warm_caches(store)  # before the fork: every worker starts with the table
            multi.register_resources(app)  # … and may serve every script of the page
            store.engine.dispose()  # no connection crosses the fork
            shared = multi.share_views(store)  # … and a view one computes, the others read
            watcher = WarningWatcher(store, quiet=60.0, max_wait=600.0)
            multi.fork_between(watcher.reading)
            settings = multi.options(store, host=host, port=port, workers=workers,
                                     on_ready=watcher.start, shared=shared)
            multi.run(app.server, settings)
            return
        import click

        click.echo("未找到 gunicorn（或本平台不支持 fork），改用单进程 waitress / gunicorn is not "
                   "available here (not installed, or no fork): serving with one waitress "
                   "process", err=True)
    threading.Thread(target=warm_caches, args=(store,), daemon=True, name="gridgov-warm").start()
    WarningWatcher(store, quiet=60.0, max_wait=600.0).start()
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    # a browser opens several connections per user (Dash sends a view's callbacks at once):
    # waitress's default limit of 100 stalled the 50-user load test for two minutes
    waitress_serve(app.server, host=host, port=port, threads=8,
                   connection_limit=WAITRESS_CONNECTIONS)
