"""The store: engine creation, schema migrations, and the few reads everyone needs.

One schema serves both backends (see :mod:`geo.schema`). The embedded default is a
SQLite file; PostGIS is reached through a ``postgresql+psycopg://`` URL. Migrations are
Alembic revisions under ``geo/migrations`` and run from code, so ``gridgov init`` works
from any working directory without an ``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from geo import schema
from geo.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


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
    return sa.create_engine(url, pool_pre_ping=True)


def is_postgis(engine: Engine) -> bool:
    """Return True when the store is PostgreSQL (with PostGIS)."""
    return engine.dialect.name == "postgresql"


def upgrade_schema(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision (harmless when already current)."""
    with engine.begin() as conn:
        if is_postgis(engine):
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """Return True when the store exists and its schema is at the newest revision."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    except sa.exc.OperationalError:
        return False


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
        return conn.execute(sa.select(sa.func.max(schema.boundary_version.c.version))).scalar()


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


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DBAPI callback)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
