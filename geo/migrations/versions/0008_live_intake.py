"""Live intake: Open311 API keys, the intake record (idempotency, rate limits), QR-code
reporting points, and an index for counting one API key's recent calls (its rate limit).

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_prefix", sa.String(12), nullable=False),
        sa.Column("scope_code", sa.String(15), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_table(
        "intake_request",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("idempotency_key", sa.String(128)),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_intake_request_key", "intake_request", ["source", "idempotency_key"],
                    unique=True)
    op.create_index("ix_intake_request_body", "intake_request",
                    ["source", "body_hash", "created_at"])
    op.create_index("ix_intake_request_case", "intake_request", ["case_id"])
    op.create_index("ix_intake_request_address", "intake_request", ["address", "created_at"])
    op.create_table(
        "report_point",
        sa.Column("token", sa.String(32), primary_key=True),
        sa.Column("unit_code", sa.String(15), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_audit_log_username_at", "audit_log", ["username", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_username_at", "audit_log")
    op.drop_table("report_point")
    op.drop_table("intake_request")
    op.drop_table("api_key")
