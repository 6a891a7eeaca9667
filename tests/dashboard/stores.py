"""A private copy of the demo store, served by the session's app while a test module runs.

Tests that write (the Open311 API, the QR form) must not change the demo store the browser
tests and the scope sweep read; the app reads its store from the server's config on every
request, so swapping it there is enough.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dashboard.state import STORE_KEY
from geo.settings import Settings
from geo.store import Store, make_engine


@contextmanager
def serving_copy(app, demo_store, path: Path, settings: Settings) -> Iterator[Store]:  # noqa: ANN001
    """Copy the demo store to ``path``, serve the copy from ``app``; yield its Store."""
    src, dst = sqlite3.connect(demo_store.url.database), sqlite3.connect(str(path))
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    store = Store(make_engine(f"sqlite:///{path}"), settings)
    try:
        with serving(app, store):
            yield store
    finally:
        store.engine.dispose()


@contextmanager
def serving(app, store: Store) -> Iterator[Store]:  # noqa: ANN001
    """Serve ``store`` from ``app`` for the block (e.g. the same engine with other settings)."""
    before = app.server.config[STORE_KEY]
    app.server.config[STORE_KEY] = store
    try:
        yield store
    finally:
        app.server.config[STORE_KEY] = before
