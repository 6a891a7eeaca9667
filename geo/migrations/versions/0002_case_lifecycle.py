"""Case lifecycle: extension, review and backlog times, people involved, event provenance,
and the store version every data write bumps.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CASE_COLUMNS = (
    ("extended_at", sa.DateTime()),
    ("reviewed_at", sa.DateTime()),
    ("rechecked_at", sa.DateTime()),
    ("backlog_at", sa.DateTime()),
    ("people_count", sa.Integer()),
)
_EVENT_COLUMNS = (
    ("recorded_at", sa.DateTime()),
    ("source", sa.String(16)),
    ("actor", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name, type_ in _CASE_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    with op.batch_alter_table("case_event") as batch:
        for name, type_ in _EVENT_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    table = op.create_table(
        "store_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime()),
    )
    op.bulk_insert(table, [{"id": 1, "version": 1}])


def downgrade() -> None:
    op.drop_table("store_version")
    with op.batch_alter_table("case_event") as batch:
        for name, _type in _EVENT_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("cases") as batch:
        for name, _type in _CASE_COLUMNS:
            batch.drop_column(name)
