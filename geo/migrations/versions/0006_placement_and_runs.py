"""Where a case lies and why (attach level, note, candidates, address match), office
corrections of a case's village, and the process behind each run (to tell a killed run).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CASE_COLUMNS = (
    ("attach_level", sa.String(16)),
    ("attach_note", sa.Text()),
    ("attach_candidates", sa.Text()),
    ("address_match", sa.Text()),
)
_RUN_COLUMNS = (
    ("pid", sa.Integer()),
    ("host", sa.String(255)),
)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name, type_ in _CASE_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    with op.batch_alter_table("ingest_run") as batch:
        for name, type_ in _RUN_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    op.create_table(
        "placement_correction",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("village_code", sa.String(15), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("corrected_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("placement_correction")
    with op.batch_alter_table("ingest_run") as batch:
        for name, _type in _RUN_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("cases") as batch:
        for name, _type in _CASE_COLUMNS:
            batch.drop_column(name)
