"""Keep the early warnings current while the dashboard runs, in a child process.

The ETL cannot import the layers, so the running dashboard server watches instead: every
``interval`` seconds it reads the store version (one single-row query) and, when it differs
from the version the newest warnings run read, starts ``python -m gridgov warnings run`` on
the same store with the server's own settings (:meth:`geo.settings.Settings.to_env`).

While cases arrive one by one (the Open311 API, the QR-code form) the version moves every few
seconds; rerunning every rule over the whole city on each move would keep a core busy for
nothing. So the watcher waits until the store has been still for ``quiet`` seconds — or, under
a steady stream, until ``max_wait`` seconds have passed since the first change it has not yet
run for — and then runs once for everything that arrived.

A child process rather than a thread, because the statistics behind the weak signals (esda,
libpysal, scikit-learn, SciPy's distributions) and one run's working memory would otherwise
stay in the serving process for good — about 100 MB that no request needs. The child writes
its results and its ledger row (``warning_run``); the server reads them like any warning.
This module imports nothing heavy for the same reason.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import sqlalchemy as sa

from geo import schema
from geo.store import Store

log = logging.getLogger(__name__)


class WarningWatcher:
    """Runs ``gridgov warnings run`` whenever the store version moves (after an ingest)."""

    def __init__(self, store: Store, *, interval: float = 30.0, timeout: float = 3600.0,
                 quiet: float = 0.0, max_wait: float = 600.0) -> None:
        self.store = store
        self.interval = interval
        self.timeout = timeout
        self.quiet = quiet
        self.max_wait = max_wait
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.reading = threading.Lock()
        """Held while the watcher reads the store: a server that forks (gunicorn, the watcher
        in its master) takes it around each fork, so no child starts with a database call
        of this thread half done (SQLite's own mutexes would stay locked in the child)."""
        self._seen: tuple[int, float] | None = None  # (version, when it was first seen)
        self._pending_since: float | None = None

    def start(self) -> WarningWatcher:
        """Start the background thread (a daemon: it dies with the server)."""
        threading.Thread(target=self._loop, daemon=True, name="gridgov-warnings").start()
        return self

    def stop(self) -> None:
        """Ask the thread to finish after its current check."""
        self._stop.set()

    def due(self) -> bool:
        """Whether the store moved since the newest successful run at the data's own date."""
        version = self.store.version()
        if version == 0:
            return False
        t = schema.warning_run
        with self.store.engine.connect() as conn:
            latest = conn.execute(sa.select(t.c.store_version, t.c.as_of_given)
                                  .where(t.c.status == "ok").order_by(t.c.run_id.desc())
                                  .limit(1)).first()
        return latest is None or latest.store_version != version or bool(latest.as_of_given)

    def check(self) -> bool:
        """Run the warnings in a child process if they are due; return whether one ran.

        Raises
        ------
        RuntimeError
            The child failed (its last output lines are in the message; the run ledger
            records the failure too).
        """
        with self._lock:
            with self.reading:
                due = self.due()
                settled = due and self._settled()
            if not due:
                self._pending_since = None
                return False
            if not settled:
                return False
            self._pending_since = None
            done = subprocess.run(self.command(), env={**os.environ, **self.store.settings.to_env()},
                                  capture_output=True, text=True, timeout=self.timeout)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise RuntimeError("warnings run failed: " + " | ".join(tail))
            log.info("warnings: %s", done.stdout.strip())
            return True

    def _settled(self) -> bool:
        """Whether the store has been still for ``quiet`` s, or has waited ``max_wait`` s."""
        now, version = time.monotonic(), self.store.version()
        if self._seen is None or self._seen[0] != version:
            self._seen = (version, now)
        if self._pending_since is None:
            self._pending_since = now
        return (now - self._seen[1] >= self.quiet
                or now - self._pending_since >= self.max_wait)

    def command(self) -> list[str]:
        """The child's command line: this Python, the store's own URL (password included)."""
        url = self.store.engine.url.render_as_string(hide_password=False)
        return [sys.executable, "-m", "gridgov", "--db", url, "warnings", "run"]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # noqa: BLE001 - keep watching; the failure is logged and in the ledger
                log.exception("warnings run failed")
            self._stop.wait(self.interval)
