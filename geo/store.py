"""The store: engine creation, schema migrations, the store version, and the Store object.

One schema serves both backends (see :mod:`geo.schema`). The embedded default is a
SQLite file; PostGIS is reached through a ``postgresql+psycopg://`` URL. Migrations are
Alembic revisions under ``geo/migrations`` and run from code, so ``gridgov init`` works
from any working directory without an ``alembic.ini``.

A running program (the CLI, the dashboard) holds one :class:`Store`: the engine, the
validated settings and one cache. Every write of data (an ingest, a station load, a
boundary import, a re-attach, a case created through the API) bumps the one
``store_version`` counter inside its own transaction (:func:`bump_version`), and every cached
value remembers the version it was built at, so there is exactly one staleness rule.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

try:  # POSIX; where it is missing (Windows: one waitress process) the turn is a thread lock
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geo import schema
from geo.errors import StoreError
from geo.settings import Settings

if TYPE_CHECKING:  # loaded by the server that shares it, not by every CLI command
    from geo.sharedcache import SharedCache

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0008"
"""The newest migration's revision. Checked by reading ``alembic_version`` with one query, so
a serving process never loads alembic (17 MB); tests/geo/test_store.py keeps it equal to
alembic's own head."""
T = TypeVar("T")


@dataclass
class _Entry:
    version: int
    value: Any


class Store:
    """The store as a program holds it: engine, validated settings and one versioned cache.

    Created once by the CLI root and by the dashboard's app factory and passed explicitly;
    nothing in gridgov keeps data in module globals. Two stores in one process (two apps,
    tests on two backends) never see each other's cache.

    Parameters
    ----------
    engine
        The database (see :func:`make_engine`).
    settings
        Validated settings (:meth:`geo.settings.Settings.from_env`).
    max_entries
        Cached values kept at most (least recently used go first); values built at an older
        store version are dropped as soon as the version moves.
    """

    def __init__(self, engine: Engine, settings: Settings, *, max_entries: int = 256) -> None:
        self.engine = engine
        self.settings = settings
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._write_turn = threading.Lock()
        self._turn_file = _turn_file(engine)
        self._seen_version: int | None = None
        self._shared: SharedCache | None = None
        self._snapshot: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
            f"gridgov-store-{id(self)}", default=None)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Connect to ``settings.database_url``."""
        return cls(make_engine(settings.database_url), settings)

    def version(self) -> int:
        """Return the store version (one single-row read; 0 before ``gridgov init``).

        Inside :meth:`snapshot` the version is read once and kept for the whole block.
        """
        held = self._snapshot.get()
        if held is None:
            return read_version(self.engine)
        if not held:
            held.append(read_version(self.engine))
        return held[0]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read the store version at most once for everything inside the block.

        The dashboard wraps each request in one: a street view asks the cache some sixty
        times, and every answer then comes from the same version of the data (a write during
        the request shows from the next request on) for one query instead of sixty.
        Context-local, so concurrent requests in other threads keep their own.
        """
        token = self._snapshot.set([])
        try:
            yield
        finally:
            self._snapshot.reset(token)

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """Hold the turn to write: one live write transaction at a time, in every process.

        SQLite has one writer. A writer that finds the write lock taken waits in SQLite's busy
        handler, which sleeps in growing steps (up to 100 ms) and wakes in no order: with 20
        clients posting at once, half the server's threads sat in that sleep and some requests
        waited seconds (py-spy of ``bench/bench_intake.py``, docs/benchmarks.md). Live writers
        queue here instead and go on the moment the holder leaves: threads of one process on a
        lock, the server's worker processes on an OS lock of the file ``<store>.turn`` (a
        blocking ``flock``, which wakes the next waiter at once; ``filelock`` polls, every
        50 ms by default, which would put that sleep back). The file is opened per turn, so a
        forked worker never shares the lock of its parent. Other writers (an ingest from the
        CLI) still meet the database's own lock and busy timeout. On PostgreSQL the row locks
        serialise these writers anyway; the turn costs nothing there.
        """
        with self._write_turn:
            if self._turn_file is None or fcntl is None:
                yield
                return
            fd = os.open(self._turn_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, or by the OS if we die
                yield
            finally:
                os.close(fd)

    def share_cache(self, shared: SharedCache | None) -> None:
        """Let the ``shared=True`` values of :meth:`cached` go through ``shared`` (the server's
        worker processes, :mod:`dashboard.workers`); None goes back to this process alone."""
        self._shared = shared

    def cached(self, key: Hashable, build: Callable[[], T], *,
               refresh: Callable[[T, int, int], T] | None = None,
               version: int | None = None, shared: bool = False) -> T:
        """Return the value cached under ``key`` at the current store version, building it once.

        Concurrent callers of the same key wait for one build (a page asks for the same
        metrics table from several callbacks at once).

        Parameters
        ----------
        build
            Computes the value from scratch.
        refresh
            ``refresh(old_value, old_version, new_version)`` brings a value built at an older
            version up to date (e.g. the case table reads only what changed); without it a
            stale value is rebuilt.
        version
            The version to check against, when the caller has just read it.
        shared
            The value is worth sharing with the other worker processes (a view, a map layer:
            costly to build, a few kB to a MB to read back) and its key has a stable ``repr``
            (:mod:`geo.sharedcache`); only when :meth:`share_cache` gave a cache.
        """
        current = self.version() if version is None else version
        with self._lock:
            self._forget_older(current)
            entry = self._entries.get(key)
            if entry is not None and entry.version == current:
                self._entries.move_to_end(key)
                return entry.value
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.version == current:
                    return entry.value
            if entry is not None and refresh is not None:
                value = refresh(entry.value, entry.version, current)
            elif shared and self._shared is not None:
                value = self._shared.get_or_build(current, key, build)
            else:
                value = build()
            with self._lock:
                self._entries[key] = _Entry(current, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    old, _ = self._entries.popitem(last=False)
                    self._building.pop(old, None)
        return value

    def cached_on(self, key: Hashable, stamp: Callable[[], Hashable],
                  build: Callable[[], T]) -> T:
        """Like :meth:`cached`, but rebuild only when ``stamp()`` differs, not on every write.

        For values that depend on part of the store (the grid, the stations): a case ingest
        moves the store version, and then the cheap ``stamp()`` (e.g. the boundary version)
        decides whether the expensive value is still good.
        """

        def fresh() -> tuple[Hashable, T]:
            mark = stamp()
            return mark, build()

        def refresh(old: tuple[Hashable, T], _old: int, _new: int) -> tuple[Hashable, T]:
            mark = stamp()
            return old if old[0] == mark else (mark, build())

        return self.cached(("refresh", *key) if isinstance(key, tuple) else ("refresh", key),
                           fresh, refresh=refresh)[1]

    def clear(self) -> None:
        """Forget every cached value (benchmarks measure from scratch; tests after raw SQL)."""
        with self._lock:
            self._entries.clear()
            self._building.clear()

    def dispose(self) -> None:
        """Close the engine's connections."""
        self.clear()
        self.engine.dispose()

    def _forget_older(self, current: int) -> None:
        """Drop values of older versions, except those kept for an incremental refresh."""
        if self._seen_version == current:
            return
        self._seen_version = current
        for key in [k for k, e in self._entries.items()
                    if e.version != current and not _refreshable(k)]:
            del self._entries[key]


def _refreshable(key: Hashable) -> bool:
    """Keys whose value can be brought up to date start with "refresh:" by convention."""
    return isinstance(key, tuple) and bool(key) and key[0] == "refresh"


def read_version(bind: Engine | Connection) -> int:
    """Return the store version: 0 on a store without the counter (before migration)."""
    try:
        if isinstance(bind, Connection):
            value = bind.execute(_VERSION).scalar()
        else:
            with bind.connect() as conn:
                value = conn.execute(_VERSION).scalar()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0
    return int(value or 0)


def bump_version(conn: Connection) -> int:
    """Advance the store version inside the caller's write transaction; return the new value.

    Called by every write of data, so the new version becomes visible exactly when the data
    does (the same commit), and a rolled-back write leaves the version as it was. On
    PostgreSQL the row lock also makes concurrent writers take turns.
    """
    t = schema.store_version
    now = datetime.now()
    if conn.dialect.update_returning:  # one statement: a live write issues a dozen, this is one
        version = conn.execute(_BUMP.returning(t.c.version), {"changed": now}).scalar()
        if version is not None:
            return int(version)
    elif conn.execute(_BUMP, {"changed": now}).rowcount:
        return int(conn.execute(sa.select(t.c.version).where(t.c.id == 1)).scalar_one())
    conn.execute(t.insert().values(id=1, version=1, changed_at=now))
    return 1


_BUMP = schema.store_version.update().where(schema.store_version.c.id == 1).values(
    version=schema.store_version.c.version + 1, changed_at=sa.bindparam("changed"))
"""The version bump as one statement compiled once (its parameters bound per call)."""


def make_engine(url: str) -> Engine:
    """Create an engine for a store URL, tuned for bulk work on each backend.

    SQLite gets WAL journalling and foreign keys; PostGIS URLs given as plain
    ``postgresql://`` use the psycopg 3 driver.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # geoalchemy2 registers its DDL hooks (PostGIS geometry columns) when imported: import it
    # before this engine runs any DDL. geo.schema imports it only on PostgreSQL, so a SQLite
    # store's server never loads it (7 MB per process).
    import geoalchemy2  # noqa: F401

    return sa.create_engine(url, pool_pre_ping=True)


def is_postgis(engine: Engine) -> bool:
    """Return True when the store is PostgreSQL (with PostGIS)."""
    return engine.dialect.name == "postgresql"


def sqlite_path(engine: Engine) -> Path | None:
    """The SQLite store's file (None for PostGIS or an in-memory store)."""
    database = engine.url.database
    if is_postgis(engine) or not database or database == ":memory:" \
            or database.startswith("file::memory:"):
        return None
    return Path(database).resolve()


def _turn_file(engine: Engine) -> str | None:
    """The file whose OS lock orders live writers across processes (SQLite on disk only)."""
    path = sqlite_path(engine)
    return None if path is None else str(path) + ".turn"


def upgrade_schema(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision (harmless when already current)."""
    from alembic import command  # only to migrate: a serving process never needs it

    with engine.begin() as conn:
        if is_postgis(engine):
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """Return True when the store exists and its schema is at the newest revision."""
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return False  # no alembic_version table: never initialised
    return [row[0] for row in found] == [SCHEMA_HEAD]


def require_store(engine: Engine) -> None:
    """Raise StoreError with the fix when the store is missing or not migrated."""
    if not schema_is_current(engine):
        raise StoreError(
            f"数据库未初始化或版本过旧，请先运行 gridgov init / the store at "
            f"{engine.url.render_as_string(hide_password=True)} is not initialised "
            "or out of date: run `gridgov init`"
        )


def current_boundary_version(engine: Engine) -> int | None:
    """Return the newest boundary version, or None before the grid is loaded."""
    with engine.connect() as conn:
        return conn.execute(_BOUNDARY_VERSION).scalar()


# Statements every live write and every request runs, built once: SQLAlchemy then finds the
# compiled form by a memoised key instead of building and hashing a new statement each time
# (a third of a live write's CPU went to that, py-spy of bench/bench_intake.py).
_VERSION = sa.select(schema.store_version.c.version).where(schema.store_version.c.id == 1)
_BOUNDARY_VERSION = sa.select(sa.func.max(schema.boundary_version.c.version))


def read_units(
    engine: Engine,
    *,
    level: str | None = None,
    web: bool = False,
    with_geometry: bool = True,
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Read the current grid units of one level (or all levels).

    Parameters
    ----------
    level
        city, district, street, village or grid; None for every level.
    web
        Return the simplified map geometry instead of the full geometry.
    with_geometry
        False returns a plain DataFrame of attributes (fast; no WKB decoding).

    Returns
    -------
    GeoDataFrame (EPSG:4326) or DataFrame
        One row per unit, ordered by code, columns as in ``grid_unit``.
    """
    t = schema.grid_unit
    cols = [c for c in t.c if c.name not in ("geometry", "web_geometry", "id", "is_current")]
    geom_col = t.c.web_geometry if web else t.c.geometry
    if with_geometry:
        cols.append(_as_wkb(geom_col, engine).label("wkb"))
    query = sa.select(*cols).where(t.c.is_current.is_(True)).order_by(t.c.code)
    if level is not None:
        query = query.where(t.c.level == level)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in cols])
    frame["population_estimated"] = frame["population_estimated"].astype(bool)
    if not with_geometry:
        return frame
    geometry = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy()) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _as_wkb(column: sa.ColumnElement, engine: Engine) -> sa.ColumnElement:
    """Select a geometry column as raw WKB on either backend (skips per-row type processing)."""
    if is_postgis(engine):
        return sa.func.ST_AsBinary(sa.type_coerce(column, sa.LargeBinary))
    return sa.type_coerce(column, sa.LargeBinary)


def _alembic_config():  # noqa: ANN202 - an alembic Config, imported only here
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DBAPI callback)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
