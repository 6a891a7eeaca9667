"""The store: one schema from the migrations, one version every data write moves, one cache."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from geo import schema
from geo.settings import Settings
from geo.store import Store, bump_version, read_version


def _only_schema_differences(diff) -> list:
    """Differences alembic reports, minus the PostGIS extras migration 0001 adds on purpose."""
    extras = ("geom", "ix_cases_geom", "ix_station_geom", "ix_grid_unit_geometry",
              "spatial_ref_sys")
    out = []
    for item in diff:
        text = repr(item)
        if any(extra in text for extra in extras):
            continue
        out.append(item)
    return out


def test_upgrading_an_empty_store_gives_exactly_the_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, schema.metadata)
    assert _only_schema_differences(diff) == []


def test_the_schema_head_is_alembics_and_a_stale_store_is_not_current(engine):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from geo.store import MIGRATIONS, SCHEMA_HEAD, schema_is_current

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD
    assert schema_is_current(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        assert not schema_is_current(engine)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE alembic_version SET version_num = '{SCHEMA_HEAD}'"))


def test_every_data_write_moves_the_version(tiny_engine, tmp_path):
    from etl.ingest import ingest_cases
    from etl.reattach import reattach
    from etl.stations import ingest_stations
    from geo.grid import load_units
    from tests.grids import tiny_grid

    store = Store(tiny_engine, Settings())
    seen = [store.version()]
    cases = tmp_path / "cases.csv"
    cases.write_text("信访件编号,登记时间,经度,纬度\nA1,2025-01-02,113.305,23.105\n",
                     encoding="utf-8")
    stations = tmp_path / "stations.csv"
    stations.write_text("站点编号,站点名称,站点类型,经度,纬度\nS1,服务站,村居服务站,113.305,23.105\n",
                        encoding="utf-8")
    for write in (lambda: ingest_cases(store, cases), lambda: ingest_stations(store, stations),
                  lambda: reattach(store),
                  lambda: load_units(tiny_engine, tiny_grid().head(3), kind="import",
                                     level="district")):
        write()
        seen.append(store.version())
    assert seen == sorted(set(seen)), seen  # strictly increasing: each write moved it


def test_a_cached_value_lives_until_the_version_moves(tiny_engine):
    store = Store(tiny_engine, Settings())
    builds = []
    value = store.cached(("answer",), lambda: builds.append(1) or 42)
    assert value == store.cached(("answer",), lambda: builds.append(1) or 43) == 42
    with tiny_engine.begin() as conn:
        bump_version(conn)
    assert store.cached(("answer",), lambda: builds.append(1) or 44) == 44
    assert len(builds) == 2


def test_a_snapshot_reads_the_version_once_and_only_in_its_own_thread(tiny_engine):
    store = Store(tiny_engine, Settings())
    before = store.version()
    seen: list[int] = []
    with store.snapshot():
        assert store.version() == before
        with tiny_engine.begin() as conn:
            bump_version(conn)
        assert store.version() == before  # the request keeps the version it started with
        other = threading.Thread(target=lambda: seen.append(store.version()))
        other.start()
        other.join()
    assert seen == [before + 1]  # another thread (request) is not pinned
    assert store.version() == before + 1


def test_a_rolled_back_write_leaves_the_version(tiny_engine):
    before = read_version(tiny_engine)
    try:
        with tiny_engine.begin() as conn:
            bump_version(conn)
            raise RuntimeError("the write failed")
    except RuntimeError:
        pass
    assert read_version(tiny_engine) == before


def test_bump_version_returns_the_new_version_and_starts_a_missing_row(tiny_engine):
    with tiny_engine.begin() as conn:
        first = bump_version(conn)
        assert bump_version(conn) == first + 1
    assert read_version(tiny_engine) == first + 1
    with tiny_engine.begin() as conn:
        conn.execute(schema.store_version.delete())
        assert bump_version(conn) == 1
    assert read_version(tiny_engine) == 1


def test_writers_of_one_process_take_turns(tiny_engine):
    store = Store(tiny_engine, Settings())
    spans = []

    def write(i):
        with store.write_turn():
            started = time.monotonic()
            time.sleep(0.03)
            spans.append((started, time.monotonic()))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort()
    assert len(spans) == 4
    assert all(left[1] <= right[0] for left, right in zip(spans, spans[1:])), spans


def test_writers_of_two_processes_take_turns(tmp_path):
    """A second server process waits in the turn until the first leaves it, and no longer."""
    import subprocess
    import sys

    from geo.store import make_engine

    path = tmp_path / "store.db"
    store = Store(make_engine(f"sqlite:///{path}"), Settings())
    child = (
        "import sys, time\n"
        "from geo.settings import Settings\n"
        "from geo.store import Store, make_engine\n"
        f"store = Store(make_engine('sqlite:///{path}'), Settings())\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "with store.write_turn():\n"
        "    print(time.time(), flush=True)\n")
    with subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().strip() == "ready"
        with store.write_turn():
            process.stdin.write("go\n")
            process.stdin.flush()
            time.sleep(0.5)  # the child now waits for the turn
            left = time.time()
        entered = float(process.stdout.readline())
    assert entered >= left  # it waited for the turn...
    assert entered - left < 0.5  # ...and went on soon after (not left in a sleep)
    assert (tmp_path / "store.db.turn").exists()


def test_concurrent_callers_wait_for_one_build(tiny_engine):
    store = Store(tiny_engine, Settings())
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    results = []
    threads = [threading.Thread(target=lambda: results.append(store.cached(("slow",), slow)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1, 1, 1, 1] and calls == [1]


def test_two_stores_never_share_a_cache(tiny_engine):
    first, second = Store(tiny_engine, Settings()), Store(tiny_engine, Settings(basemap="none"))
    assert first.cached(("k",), lambda: "first") == "first"
    assert second.cached(("k",), lambda: "second") == "second"


def test_cached_on_rebuilds_only_when_its_stamp_changes(tiny_engine):
    store = Store(tiny_engine, Settings())
    stamp = ["grid-1"]
    builds = []
    assert store.cached_on(("grid",), lambda: stamp[0], lambda: builds.append(1) or "a") == "a"
    with tiny_engine.begin() as conn:
        bump_version(conn)  # a case write: the stamp is the same, the value is kept
    assert store.cached_on(("grid",), lambda: stamp[0], lambda: builds.append(1) or "b") == "a"
    stamp[0] = "grid-2"
    with tiny_engine.begin() as conn:
        bump_version(conn)
    assert store.cached_on(("grid",), lambda: stamp[0], lambda: builds.append(1) or "c") == "c"
    assert len(builds) == 2


def test_no_module_keeps_a_cache_in_globals():
    """Caches that lived in module globals are gone: the Store owns every cached value."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("geo", "etl", "layers", "dashboard"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else [])
                for target in targets:
                    name = getattr(target, "id", "")
                    if {"CACHE", "MEMO", "REGISTRY"} & set(name.split("_")):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert offenders == []


def test_store_version_is_zero_before_init(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'none.db'}")
    assert read_version(engine) == 0
