"""Baseline: every table of geo.schema as first released, plus PostGIS extras.

The baseline creates the tables from ``geo.schema.metadata`` (there is no older schema to
migrate from); later changes get their own explicit revisions. On PostGIS it also adds
GiST indexes on the grid geometry and generated point columns for cases and stations,
so spatial SQL works there while bulk loads keep writing plain lon/lat.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from geo.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_POINT_TABLES = ("cases", "station")


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind=bind)
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX IF NOT EXISTS ix_grid_unit_geometry ON grid_unit USING GIST (geometry)")
    for table in _POINT_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED"
        )
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_geom ON {table} USING GIST (geom)")


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
    op.execute(sa.text("SELECT 1"))
