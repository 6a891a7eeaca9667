"""`gridgov serve --workers N`: gunicorn workers forked from a warmed master.

Unit tests check the pure parts (worker count, fork hooks, the watcher started once, the
waitress fallback); one test runs the real multi-worker server on the tiny demo store, logs in,
kills workers with SIGKILL while requests run, and checks that the next requests succeed on the
restarted workers with the same session (so sessions work across processes).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dashboard import workers as multi
from geo.settings import Settings
from geo.store import Store, make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_zero_workers_means_two_per_core():
    assert multi.resolve_workers(0) == 2 * multi.cpu_count() >= 2
    assert multi.resolve_workers(3) == 3
    assert Settings().workers == 0  # every core unless asked (我的导出 is shared by workers)
    assert Settings.from_env({"GRIDGOV_WORKERS": "4"}).workers == 4


def test_bind_address_brackets_ipv6():
    assert multi.bind_address("127.0.0.1", 8050) == "127.0.0.1:8050"
    assert multi.bind_address("::1", 8050) == "[::1]:8050"


def test_post_fork_drops_the_inherited_pool_without_closing_its_connections(tmp_path):
    store = Store(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), Settings())
    options = multi.options(store, host="127.0.0.1", port=1, workers=2)
    assert options["preload_app"] is True and options["workers"] == 2
    inherited = store.engine.pool
    held = store.engine.connect()  # the master's connection, still in use there
    options["post_fork"](None, None)
    assert store.engine.pool is not inherited  # the worker opens its own connections
    assert held.exec_driver_sql("select 1").scalar() == 1  # the master's one still works
    held.close()
    store.engine.dispose()


def test_the_watcher_starts_once_in_the_master_not_per_worker(monkeypatch, tmp_path):
    from dashboard import app as app_module
    from layers.warnings.watcher import WarningWatcher

    started, captured = [], {}
    monkeypatch.setattr(WarningWatcher, "start", lambda self: started.append(self))
    monkeypatch.setattr(app_module, "create_app", lambda store: type("A", (), {"server": "wsgi"}))
    monkeypatch.setattr(app_module, "warm_caches", lambda store: captured.setdefault("warm", 1))
    monkeypatch.setattr(multi, "register_resources", lambda app: captured.setdefault("page", 1))
    monkeypatch.setattr(multi, "gunicorn_available", lambda: True)
    monkeypatch.setattr(multi, "run", lambda wsgi, settings: captured.update(settings=settings))
    store = Store(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), Settings())
    app_module.serve(store, workers=3)
    settings = captured["settings"]
    assert captured["warm"] == captured["page"] == 1 and started == []  # before the fork
    for _ in range(3):
        settings["pre_fork"](None, None)
        settings["post_fork"](None, None)
    settings["when_ready"](None)
    assert len(started) == 1
    views = store._shared.directory  # the workers' view cache, made before the fork …
    assert views.is_dir() and views.name.startswith(f"gridgov-views-{os.getpid()}-")
    settings["on_exit"](None)
    assert not views.exists()  # … and gone when the master exits


def test_a_view_cache_left_by_a_killed_master_is_removed_by_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(multi.tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan, other = tmp_path / f"gridgov-views-{dead}-abc", tmp_path / "gridgov-views-x"
    orphan.mkdir()
    other.mkdir()
    living = tmp_path / f"gridgov-views-{os.getppid()}-def"  # a server still running
    living.mkdir()
    store = Store(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), Settings())
    shared = multi.share_views(store)
    assert not orphan.exists() and other.exists() and living.exists()
    assert shared.directory.parent == tmp_path
    shared.remove()


def test_without_gunicorn_serve_falls_back_to_one_waitress_process(monkeypatch, tmp_path, capsys):
    import waitress

    from dashboard import app as app_module
    from layers.warnings.watcher import WarningWatcher

    served = []
    monkeypatch.setattr(WarningWatcher, "start", lambda self: self)
    monkeypatch.setattr(app_module, "create_app", lambda store: type("A", (), {"server": "wsgi"}))
    monkeypatch.setattr(app_module, "warm_caches", lambda store: None)
    monkeypatch.setattr(multi, "gunicorn_available", lambda: False)
    monkeypatch.setattr(waitress, "serve", lambda wsgi, **kw: served.append((wsgi, kw)))
    app_module.serve(Store(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), Settings()), workers=4)
    assert served and served[0][0] == "wsgi"
    err = capsys.readouterr().err
    assert "gunicorn" in err and "waitress" in err and "单进程" in err


# --------------------------------------------------------------------------- the real server


@pytest.mark.skipif(not multi.gunicorn_available(), reason="gunicorn needs fork (not on Windows)")
def test_killing_a_worker_mid_requests_keeps_serving_the_same_session(demo_store, demo_accounts,
                                                                      tmp_path):
    import requests

    from tests.dashboard.dash_client import DashClient
    from tests.dashboard.http_client import HttpClient

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    temp = tmp_path / "tmp"  # the server's own temporary directory: the shared view cache
    temp.mkdir()
    env = {**os.environ, "GRIDGOV_MODE": "demo", "GRIDGOV_BASEMAP": "none",
           "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)}
    url = demo_store.url.render_as_string(hide_password=False)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        master = subprocess.Popen([sys.executable, "-m", "gridgov", "--db", url, "serve",
                                   "--workers", "2", "--port", str(port)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base, master, log)
        _every_script_of_the_page_from_any_worker(base, demo_store)  # before any page is drawn
        dash = DashClient(HttpClient(_fresh_connections(), base, timeout=60))
        dash.login("demo-city", demo_accounts["password"])
        router = next(c for c in dash.callbacks() if c.name == "_pages_content.children")

        def view() -> int:
            return dash.call(router, {"_pages_location.pathname": "/city",
                                      "_pages_location.search": ""}).status_code

        assert view() == 200
        _an_export_started_on_one_worker_arrives_from_any(dash, log)
        original = _workers(master.pid, count=2)
        statuses: list[int | str] = []
        stop, running = threading.Event(), threading.Event()

        def load() -> None:  # another logged-in client, requesting while the worker dies
            other = DashClient(HttpClient(_fresh_connections(), base, timeout=60))
            other.login("demo-city", demo_accounts["password"])
            running.set()
            while not stop.is_set():
                try:
                    statuses.append(other.http.get("/_dash-layout").status_code)
                except requests.RequestException as err:
                    statuses.append(type(err).__name__)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        assert running.wait(30)
        time.sleep(0.3)
        for pid in original:  # every worker that saw the login, one after the other
            os.kill(pid, signal.SIGKILL)
            _wait_replaced(master.pid, pid)
            assert all(view() == 200 for _ in range(3))
        before = len(statuses)
        time.sleep(0.5)
        stop.set()
        thread.join(timeout=20)
        assert len(statuses) > before and all(s == 200 for s in statuses[before:]), statuses[-10:]
        assert not set(_workers(master.pid, count=2)) & set(original)
        assert master.poll() is None  # the master never went down
        assert len(list(temp.glob("gridgov-views-*/values"))) == 1  # the workers' view cache
    finally:
        master.terminate()
        try:
            master.wait(timeout=20)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    assert list(temp.glob("gridgov-views-*")) == []  # removed when the master stopped


def _every_script_of_the_page_from_any_worker(base: str, demo_store) -> None:  # noqa: ANN001
    """The page's scripts, each fetched twice on new connections (so from either worker),
    six at a time, as a browser does right after the page: no worker has drawn the page yet. The list is the
    page of an app of the same code in this process (the same fingerprinted names)."""
    import re

    from dashboard.app import create_app
    from geo.store import Store
    from tests.dashboard.conftest import APP_SETTINGS

    app = create_app(Store(demo_store, APP_SETTINGS))
    with app.server.test_request_context("/"):
        scripts = re.findall(r'<script src="([^"]+)"', app.index())
    assert len(scripts) > 10
    from concurrent.futures import ThreadPoolExecutor

    bundles = [src for src in scripts if src.startswith("/_dash-component-suites/")] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:  # six at a time, as a browser fetches
        statuses = list(pool.map(
            lambda src: (src, _fresh_connections().get(base + src, timeout=30).status_code),
            bundles))
    assert statuses and all(code == 200 for _src, code in statuses), [
        (src, code) for src, code in statuses if code != 200]


def _an_export_started_on_one_worker_arrives_from_any(dash, log: Path) -> None:  # noqa: ANN001
    """我的导出 across workers: every request on a new connection, so on either worker."""
    callbacks = {c.name: c for c in dash.callbacks()}
    query = {"page": "city", "search": "?unit=440103000000"}
    answer = dash.call(callbacks["my-exports-tick.data"], {"my-exports-request.data": {
        "kind": "cases.csv", "query": query, "at": 1}})
    assert answer.status_code == 200, log.read_text(errors="replace")[-3000:]
    job = answer.get_json()["response"]["my-exports-tick"]["data"]
    deadline = time.monotonic() + 30
    while (response := dash.http.get(f"/exports/{job}")).status_code == 202:
        assert time.monotonic() < deadline, "the export never finished"
        time.sleep(0.05)
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    listed = [dash.call(callbacks["my-exports-list.children"], {"my-exports-tick.data": job})
              for _ in range(4)]  # whichever worker answers lists the job, fetched
    texts = [r.get_data(as_text=True) for r in listed]
    assert all(r.status_code == 200 for r in listed) and all(
        "已完成" in t and "data-auto" not in t for t in texts), [t[:200] for t in texts]


def _fresh_connections():  # noqa: ANN202 - a requests.Session
    """A client that opens a connection per request, so consecutive requests go to any worker."""
    import requests

    session = requests.Session()
    session.headers["Connection"] = "close"
    return session


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError("server exited: " + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(base + "/login", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _workers(master: int, *, count: int, timeout: float = 20.0) -> list[int]:
    """The master's worker processes (its forks; not a warnings run it started)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for pid in _children(master):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"warnings" not in cmdline:
                found.append(pid)
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _wait_replaced(master: int, dead: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = _workers(master, count=2, timeout=0)
        if dead not in alive and len(alive) == 2:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {dead} was not replaced")


def test_a_fork_waits_while_the_watcher_reads_the_store():
    lock = threading.Lock()
    multi.fork_between(lock)
    lock.acquire()  # the watcher's query is under way
    threading.Timer(0.4, lock.release).start()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child starts with the lock free
        os._exit(0 if lock.acquire(blocking=False) else 1)
    waited = time.monotonic() - started
    _, status = os.waitpid(pid, 0)
    assert waited >= 0.3 and os.waitstatus_to_exitcode(status) == 0
    assert lock.acquire(blocking=False)  # and the parent's is free again
    lock.release()
