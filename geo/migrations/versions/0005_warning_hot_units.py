"""The hot villages of each warnings run, stored with it (the map reads them, never Gi*).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warning_run") as batch:
        batch.add_column(sa.Column("hot_units", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("warning_run") as batch:
        batch.drop_column("hot_units")
