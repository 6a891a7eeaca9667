"""Several server processes on one store: gunicorn workers forked from a warmed master.

One Python process serves one request's array arithmetic at a time (the GIL), so a second core
needs a second process. Each process loading its own columnar case table (信访件) would cost
the table once per worker; instead the master opens the store, builds the app and warms the
caches *before* forking (gunicorn's ``preload_app``), and every worker starts with the table
already in memory, shared copy-on-write with the master and the other workers. The table is
numpy arrays that requests only read, so their pages stay shared; ``gc.freeze()`` before each
fork keeps the cyclic collector from writing to the headers of the objects built during
warm-up (which would copy those pages into every worker).

What must not cross the fork: open database connections (two processes on one socket or one
SQLite handle). The master closes its pool before the first fork, and each worker drops the
pool it inherited without touching the connections (``engine.dispose(close=False)``: the
master may still be using them, e.g. the warnings watcher), then opens its own.

What runs once: the early-warnings watcher (:mod:`layers.warnings.watcher`) runs in the
master, not once per worker; forks wait while it is reading the store (:func:`fork_between`).
Sessions live in the store (:mod:`dashboard.auth`) and the cookie-signing key is made before
the fork, so a user's next request may land on any worker, including one forked after a crash:
gunicorn restarts a worker that dies, and the others keep serving.

What the workers compute after the fork, they share: the views (街道视图, 网格员视图), map
layers, metrics tables, trends and 两强 go through one cache on local disk
(:mod:`geo.sharedcache`), so a street's view is computed by one worker for all of them, and a
page's callbacks that land on four workers at once wait for that one build.

Workers are gthread workers: a few threads each, so a request waiting on the database or
streaming an export does not block the worker, and a long export is not mistaken for a hung
worker (the heartbeat comes from the worker's main loop, not the request).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from geo.sharedcache import SharedCache
from geo.store import Store

THREADS_PER_WORKER = 2
"""Request threads in each worker: two, so a request waiting on the database or streaming a
download does not hold up its worker, and no more, because the threads of one worker share
its interpreter lock: a third and fourth thread add waiting and lock hand-overs, not work.
Measured with 4 workers at 1,000,000 cases, 50 users, on 2 cores (docs/scaling.md): 4 threads
each gave p95 470-530 ms at 6 views/s with 0.69-0.73 cores busy, and saturated at 15.3-15.7
views/s; 2 threads each gave 380, 400 and 610 ms (0.61, 0.65 and 0.80 cores: the machine's
speed moved between runs), and saturated at 20.3 views/s (0.086 core-seconds per view
against 0.11)."""
WORKERS_PER_CORE = 2
"""Default workers per core. Threads of one worker take turns on the interpreter lock, and a
CPU-bound callback (a map, a street's lists, a CSV export) keeps the others of its worker
waiting in 5 ms slices; the operating system shares a core between processes more finely and
more fairly. Measured at 1,000,000 cases, 50 users, on 2 cores, 4 threads per worker
(docs/scaling.md): at 6 views/s, 2 workers gave p95 770 ms and used 0.83 cores, 3 gave 470 ms,
4 gave 470-530 ms at 0.69-0.73 cores; saturated, 2 workers delivered 13.0 views/s, 4 and 5
delivered 15.3-15.7 and 15.1. gunicorn's own guide starts from 2-4 workers per core. Each
worker adds its own caches after the fork (about 130 MB at 1,000,000 cases after two minutes
of load with 2 threads, 160 MB with 4), not another copy of the case table."""


VIEWS_PREFIX = "gridgov-views-"
"""Name of a server run's view cache in the temporary directory: the prefix, the master's
process id, a random part."""


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(requested: int) -> int:
    """The number of server processes to run: ``requested``, or :data:`WORKERS_PER_CORE` per
    core for 0."""
    return WORKERS_PER_CORE * cpu_count() if requested <= 0 else requested


def register_resources(app: Any) -> None:  # noqa: ANN401 - a dash.Dash
    """Render the page shell once in the master, so every worker may serve Dash's bundles.

    Dash learns which component bundles it may send (``registered_paths``) when it renders
    its index page. A worker forked before that knows none: when a browser's request for a
    bundle landed on a worker that had not rendered the page itself (another connection,
    another worker), it answered 500 "dash is not a registered library" and the page stayed
    blank. Rendered before the fork, every worker starts knowing them.
    """
    with app.server.test_request_context("/"):
        app.index()


def gunicorn_available() -> bool:
    """Whether gunicorn can run here (it needs ``fork``: not on Windows)."""
    try:
        import gunicorn.app.base  # noqa: F401
    except ImportError:
        return False
    return hasattr(os, "fork")


def bind_address(host: str, port: int) -> str:
    """gunicorn's bind string (IPv6 addresses in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fork_between(lock: threading.Lock) -> None:
    """Fork only while ``lock`` is free: it is taken before every fork of this process and
    released after it, in the parent and in the child.

    The watcher runs in a thread of the master, and gunicorn forks (at start, and to replace
    a worker) whenever it must; a fork in the middle of the watcher's query would leave the
    child with SQLite's internal mutexes held by a thread that does not exist there, and the
    worker's first query would hang for good.
    """
    os.register_at_fork(before=lock.acquire, after_in_parent=lock.release,
                        after_in_child=lock.release)


def share_views(store: Store) -> SharedCache:
    """Give the store a cache of computed views that every worker reads (:mod:`geo.sharedcache`).

    Called in the master after the warm-up (those values every worker has in memory already),
    before the fork. The directory is this server run's own; :func:`options` removes it when
    the master exits.
    """
    _remove_orphaned_views(Path(tempfile.gettempdir()))
    shared = SharedCache(tempfile.mkdtemp(prefix=f"{VIEWS_PREFIX}{os.getpid()}-"))
    store.share_cache(shared)
    return shared


def _remove_orphaned_views(parent: Path) -> None:
    """Delete the view caches of servers whose master is gone.

    A master stopped by SIGKILL (the OOM killer, a supervisor's last resort) cannot remove
    its directory; the master's process id is in the name, so the next server removes it.
    """
    for folder in parent.glob(VIEWS_PREFIX + "*-*"):
        pid = folder.name.removeprefix(VIEWS_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def options(store: Store, *, host: str, port: int, workers: int,
            on_ready: Any = None, shared: SharedCache | None = None) -> dict[str, Any]:
    """gunicorn settings for the dashboard: preload, gthread workers, the fork hooks.

    ``on_ready`` runs once in the master when it is ready to fork the workers (the watcher);
    ``shared``, the workers' cache of views, is removed when the master exits.
    """

    def pre_fork(_server: Any, _worker: Any) -> None:
        gc.freeze()  # objects made so far: never scanned again, so their pages stay shared

    def post_fork(_server: Any, _worker: Any) -> None:
        store.engine.dispose(close=False)  # the master's connections stay the master's

    def when_ready(_server: Any) -> None:
        if on_ready is not None:
            on_ready()

    def on_exit(_server: Any) -> None:
        if shared is not None:
            shared.remove()

    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "worker_class": "gthread",
        "threads": THREADS_PER_WORKER,
        "preload_app": True,
        "timeout": 120,
        "graceful_timeout": 20,
        "keepalive": 75,  # longer than a client or balancer keeps an idle connection: no reset race
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "gridgov-serve",
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "when_ready": when_ready,
        "on_exit": on_exit,
    }


def run(wsgi: Any, settings: dict[str, Any]) -> None:
    """Run ``wsgi`` under gunicorn with ``settings`` until the master is stopped."""
    from gunicorn.app.base import BaseApplication

    class _Application(BaseApplication):
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return wsgi

    _Application().run()
