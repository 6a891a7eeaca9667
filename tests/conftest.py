"""Store fixtures for both backends, built in code.

Every store test runs twice: on an embedded SQLite file and on a real PostGIS
database. The PostGIS server comes from ``GRIDGOV_TEST_POSTGIS_URL`` (a URL to any
database on the server, e.g. ``postgresql://postgres@127.0.0.1/postgres``); a fresh
database with ``CREATE EXTENSION postgis`` is created for the session and dropped
afterwards. Without the variable the PostGIS runs are skipped locally, and fail in CI
(``CI=true``), because a skipped PostGIS test is a missing test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from geo.store import make_engine, upgrade_schema
from tests.grids import tiny_grid

BACKENDS = ("sqlite", "postgis")


@pytest.fixture(scope="session")
def postgis_server_url() -> Iterator[str]:
    """Create a fresh PostGIS database for the session; yield its URL."""
    yield from _fresh_postgis_database()


@pytest.fixture(scope="session")
def postgis_migrated(postgis_server_url: str) -> dict[str, list[dict]]:
    """What a migrated PostGIS store holds: {table: the rows the migrations seeded}."""
    _drop_all_tables(postgis_server_url)
    engine = make_engine(postgis_server_url)
    upgrade_schema(engine)
    meta = sa.MetaData()
    meta.reflect(engine, only=_public_tables(postgis_server_url))
    with engine.connect() as conn:
        seeded = {name: [dict(r) for r in conn.execute(sa.select(table)).mappings()]
                  for name, table in meta.tables.items() if name != "alembic_version"}
    engine.dispose()
    return seeded


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store file; a test's store is a copy of it."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def real_grid_engine(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[sa.Engine]:
    """A store (own database) holding the bundled real Guangzhou grid, shared by the session."""
    from geo.grid import init_store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('real') / 'gridgov.db'}"
        databases: Iterator[str] = iter([url])
    else:
        databases = _fresh_postgis_database()
        url = next(databases)
    engine = make_engine(url)
    init_store(engine)
    yield engine
    engine.dispose()
    next(databases, None)  # drops the PostGIS database


def _fresh_postgis_database() -> Iterator[str]:
    server = os.environ.get("GRIDGOV_TEST_POSTGIS_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("GRIDGOV_TEST_POSTGIS_URL is not set in CI: PostGIS tests must run")
        pytest.skip("GRIDGOV_TEST_POSTGIS_URL not set (PostGIS tests run in CI)")
    name = f"gridgov_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty store (no tables yet) on each backend.

    Under :func:`engine` the PostGIS database is left as it is: ``engine`` empties it itself,
    faster than dropping every table only to migrate again.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gridgov.db'}"
        return
    url = request.getfixturevalue("postgis_server_url")
    if "engine" not in request.fixturenames:
        _drop_all_tables(url)
    yield url


@pytest.fixture
def engine(request: pytest.FixtureRequest, store_url: str) -> Iterator[sa.Engine]:
    """A migrated, empty store on each backend.

    SQLite: a copy of the session's migrated file. PostGIS: the session's database emptied
    by TRUNCATE when it holds exactly the migrated tables at the newest revision (every
    test that went before left at most rows), else dropped and migrated again.
    """
    if store_url.startswith("sqlite"):
        shutil.copyfile(request.getfixturevalue("sqlite_migrated"),
                        store_url.removeprefix("sqlite:///"))
    else:
        _empty_postgis(store_url, request.getfixturevalue("postgis_migrated"))
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tiny_engine(engine: sa.Engine) -> sa.Engine:
    """A store holding the tiny hand-made grid of tests/grids.py (2 districts, 4 streets, 8 villages)."""
    from geo.grid import load_units

    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    return engine


def _public_tables(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'spatial_ref_sys'")
        ).scalars().all()
    engine.dispose()
    return list(tables)


def _drop_all_tables(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in _public_tables(url):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()


def _empty_postgis(url: str, migrated: dict[str, list[dict]]) -> None:
    """Leave the PostGIS database as just migrated (see :func:`engine`): seeded rows only."""
    from geo.store import SCHEMA_HEAD

    tables = set(_public_tables(url))
    engine = make_engine(url)
    with engine.begin() as conn:
        current = tables == {*migrated, "alembic_version"} and conn.execute(
            sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        if current:
            names = ", ".join(f'"{t}"' for t in sorted(migrated))
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            for name, rows in migrated.items():
                if rows:
                    conn.execute(sa.table(name, *(sa.column(k) for k in rows[0])).insert(), rows)
    if not current:
        _drop_all_tables(url)
        upgrade_schema(engine)
    engine.dispose()


def run_cli(engine: sa.Engine, args: list[str], **env: str):
    """Run the real ``gridgov`` command on ``engine``'s store (``--db``), as a user would."""
    from click.testing import CliRunner

    from gridgov.cli import main

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--db", url, *args], env=env or None)
