"""Clean crashes and concurrency: a killed ingest leaves no data and no litter once the next
run (or ``gridgov runs``) has looked; two loads at once take turns or stop with 'store busy',
never a traceback, never lost or doubled cases — on SQLite and PostGIS."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.ingest import ingest_cases
from etl.ledger import staging_dir
from geo import schema
from geo.settings import Settings
from geo.store import Store
from geo.storelock import StoreBusyError, store_lock
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
HEADER = "信访件编号,登记时间,经度,纬度"

# Runs an ingest in a child process that stops at a named point, says so, and waits there
# to be killed with SIGKILL by the test (as kill -9 would).
_CHILD = textwrap.dedent("""
    import sys, time
    from etl import ledger, load
    from etl.ingest import ingest_cases
    from geo.settings import Settings
    from geo.store import Store, make_engine

    url, path, point = sys.argv[1:4]

    def stop_here(real):
        def wrapper(*args, **kwargs):
            if point == "insert":
                result = real(*args, **kwargs)
            print("AT", point, flush=True)
            time.sleep(600)
        return wrapper

    target = {"insert": (load, "_insert_batch"), "commit": (ledger, "close_run")}[point]
    setattr(target[0], target[1], stop_here(getattr(*target)))
    load.BULK_ROWS = 1  # the bulk path: staging files and dropped indexes in the transaction
    ingest_cases(Store(make_engine(url), Settings()), path)
""")


def _file(tmp_path: Path, name: str, ids: list[str], day: str = "2024-01-02") -> Path:
    path = tmp_path / name
    rows = [f"{i},{day},113.305,23.105" for i in ids]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _runs(engine) -> list[tuple[int, str]]:
    t = schema.ingest_run
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.c.run_id, t.c.status)
                                               .order_by(t.c.run_id)).all()]


def _kill_at(engine, path: Path, point: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen([sys.executable, "-c", _CHILD, url, str(path), point],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, cwd=REPO) as child:
        try:
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert line.strip() == f"AT {point}", child.stderr.read()


@pytest.mark.parametrize(("store_url", "point"), [
    ("sqlite", "insert"),   # staging files written, indexes dropped, batches going in
    ("sqlite", "commit"),   # everything written, the ledger closing, not yet committed
    ("postgis", "insert"),  # mid-COPY, the advisory lock held by the dead session
], indirect=["store_url"])
def test_kill_9_at_any_point_then_gridgov_runs_is_clean(tiny_engine, tmp_path, point):
    path = _file(tmp_path, "cases.csv", [f"K{i}" for i in range(5)])
    _kill_at(tiny_engine, path, point)
    assert _runs(tiny_engine) == [(1, "running")]  # as the killed process left it
    assert _count(tiny_engine, schema.cases) == 0  # … but nothing of its data
    if point == "insert" and tiny_engine.dialect.name == "sqlite":
        assert any(staging_dir(tiny_engine, 1, create=False).iterdir())  # litter, for now
    result = run_cli(tiny_engine, ["runs"])
    assert result.exit_code == 0, result.output
    assert "aborted" in result.output and "marked 1 run(s)" in result.output
    assert _runs(tiny_engine) == [(1, "aborted")]
    report = ingest_cases(Store(tiny_engine, Settings()), path)
    assert report.inserted == 5 and _runs(tiny_engine) == [(1, "aborted"), (2, "ok")]
    assert not staging_dir(tiny_engine, 1, create=False).exists()
    assert not staging_dir(tiny_engine, 2, create=False).exists()


def test_two_loads_at_once_take_turns_without_losing_or_doubling_cases(tiny_engine, tmp_path,
                                                                       caplog):
    first = _file(tmp_path, "a.csv", [f"C{i}" for i in range(0, 300)])
    second = _file(tmp_path, "b.csv", [f"C{i}" for i in range(200, 500)], day="2024-01-03")
    reports, errors = {}, []
    url = tiny_engine.url.render_as_string(hide_password=False)

    def load(name: str, path: Path) -> None:
        from geo.store import make_engine

        engine = make_engine(url)
        try:
            reports[name] = ingest_cases(Store(engine, Settings()), path)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            engine.dispose()

    caplog.set_level(logging.WARNING, logger="gridgov.etl")
    with store_lock(tiny_engine, wait_s=0):  # both start while the store is taken …
        threads = [threading.Thread(target=load, args=(n, p))
                   for n, p in (("a", first), ("b", second))]
        for thread in threads:
            thread.start()
        threads[0].join(timeout=0.5)
    for thread in threads:  # … and run one after the other once it is free
        thread.join(timeout=120)
    assert not errors, errors
    assert "another load is writing to the store; waiting" in caplog.text
    a, b = reports["a"], reports["b"]
    assert a.balanced and b.balanced
    assert a.inserted + b.inserted == 500  # every case once
    assert a.updated + b.updated == 100  # the overlap: updated by whichever ran second
    assert _count(tiny_engine, schema.cases) == 500
    with tiny_engine.connect() as conn:
        created = conn.execute(sa.select(sa.func.count()).select_from(schema.case_event)
                               .where(schema.case_event.c.event == "created")).scalar_one()
    assert created == 500


def test_a_load_that_cannot_wait_stops_with_store_busy(tiny_engine, tmp_path):
    path = _file(tmp_path, "a.csv", ["B1"])
    with store_lock(tiny_engine, wait_s=0):
        with pytest.raises(StoreBusyError, match="store busy"):
            ingest_cases(Store(tiny_engine, Settings(store_lock_wait_s=0)), path)
        result = run_cli(tiny_engine, ["ingest", "cases", str(path)],
                         GRIDGOV_STORE_LOCK_WAIT_S="0.5")
    assert result.exit_code == 1
    assert "数据库正忙" in result.output and "store busy" in result.output
    assert "Traceback" not in result.output
    assert _count(tiny_engine, schema.cases) == 0 and _runs(tiny_engine) == []
