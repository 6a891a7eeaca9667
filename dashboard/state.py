"""The running app's store: kept on the Flask app, reached from any callback or route.

:func:`dashboard.app.create_app` puts the one :class:`geo.store.Store` into the server's config
(the Flask pattern: state owned by the app, not module globals), so two apps in one process
(tests on two backends) never share a store, and importing the dashboard loads nothing.
"""

from __future__ import annotations

import flask

from geo.store import Store

STORE_KEY = "GRIDGOV_STORE"


def store() -> Store:
    """Return the store of the app serving the current request."""
    try:
        return flask.current_app.config[STORE_KEY]
    except (KeyError, RuntimeError) as error:
        raise RuntimeError("dashboard not initialised: call dashboard.app.create_app first") \
            from error
