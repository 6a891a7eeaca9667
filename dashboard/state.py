"""The running app's store: kept on the Flask app, reached from any callback or route.

:func:`dashboard.app.create_app` puts the one :class:`geo.store.Store` into the server's config
(the Flask pattern: state owned by the app, not module globals), so two apps in one process
(tests on two backends) never share a store, and importing the dashboard loads nothing.
"""

from __future__ import annotations

import contextlib

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


def install(server: flask.Flask, store: Store) -> None:
    """Keep the store on the app, and read its version once per request.

    Each request runs inside :meth:`geo.store.Store.snapshot`: every callback of a view
    sees one version of the data, for one query (not one per cached value it asks for).
    """
    server.config[STORE_KEY] = store

    @server.before_request
    def _snapshot() -> None:
        stack = contextlib.ExitStack()
        stack.enter_context(server.config[STORE_KEY].snapshot())  # the store served now
        flask.g.gridgov_snapshot = stack

    @server.teardown_request
    def _release(_error: BaseException | None) -> None:
        stack = flask.g.pop("gridgov_snapshot", None)
        if stack is not None:
            stack.close()
