"""Accounts, server-side sessions and the hash-chained audit trail.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.String(15)),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime()),
        sa.Column("valid_to", sa.DateTime()),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime()),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime()),
        sa.Column("last_login_at", sa.DateTime()),
    )
    op.create_table(
        "user_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("end_reason", sa.String(16)),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_user_session_user", "user_session", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(64)),
        sa.Column("role", sa.String(16)),
        sa.Column("scope_code", sa.String(15)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(15)),
        sa.Column("case_ids", sa.Text()),
        sa.Column("count", sa.Integer()),
        sa.Column("address", sa.String(64)),
        sa.Column("detail", sa.Text()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_address_at", "audit_log", ["address", "at"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "row_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_index("ix_audit_log_address_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_user_session_user", "user_session")
    op.drop_table("user_session")
    op.drop_table("users")
