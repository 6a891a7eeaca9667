"""Early warnings (预警): the warning records, their state history and the run ledger.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warning",
        sa.Column("warning_id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("unit_code", sa.String(15), nullable=False),
        sa.Column("unit_level", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32)),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float()),
        sa.Column("statistic", sa.Float()),
        sa.Column("p_value", sa.Float()),
        sa.Column("q_value", sa.Float()),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("case_ids", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float()),
        sa.Column("lat", sa.Float()),
        sa.Column("radius_m", sa.Float()),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_at", sa.DateTime()),
        sa.Column("state_by", sa.Text()),
        sa.Column("state_note", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_warning_unit", "warning", ["unit_code"])
    op.create_index("ix_warning_rule_level", "warning", ["rule", "level"])
    op.create_table(
        "warning_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("warning_id", sa.String(32), sa.ForeignKey("warning.warning_id"),
                  nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_warning_event_warning", "warning_event", ["warning_id"])
    op.create_table(
        "warning_run",
        sa.Column("run_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("as_of_given", sa.Boolean(), nullable=False),
        sa.Column("store_version", sa.Integer(), nullable=False),
        sa.Column("rules_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deactivated", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float()),
        sa.Column("message", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("warning_run")
    op.drop_index("ix_warning_event_warning", table_name="warning_event")
    op.drop_table("warning_event")
    op.drop_index("ix_warning_rule_level", table_name="warning")
    op.drop_index("ix_warning_unit", table_name="warning")
    op.drop_table("warning")
