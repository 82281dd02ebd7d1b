"""evidence: what tied a bounce to a subscriber, and the send loop's circuit breaker

Revision ID: 0005_evidence
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = "0005_evidence"
down_revision = "0004"
branch_labels = None
depends_on = None

EVIDENCE = ("verp", "message-id", "webhook", "smtp", "none")
VERDICTS = (
    "accepted", "hard", "soft", "policy", "throttled", "closing", "deferred", "unknown",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "domain_holds",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("policy_streak", sa.Integer(), nullable=False),
        sa.Column("held_since", newsletter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_domain_holds_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "domain", name=op.f("pk_domain_holds")),
    )
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "evidence",
                sa.Enum(*EVIDENCE, name="evidence", native_enum=False, length=32),
                server_default=sa.text("'none'"),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_at", newsletter.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_bounce_events_review", ["evidence", "reviewed_at"], unique=False
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_reply", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("status_since", newsletter.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("policy_window", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "policy_window_size", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "verdict",
                sa.Enum(*VERDICTS, name="verdict", native_enum=False, length=32),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_deliveries_queue_id",
            ["queue_id"],
            unique=False,
            postgresql_where=sa.text("queue_id IS NOT NULL"),
            sqlite_where=sa.text("queue_id IS NOT NULL"),
        )
    with op.batch_alter_table("domain_throttles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("signals", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("signal_delivery_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("domain_throttles", schema=None) as batch_op:
        batch_op.drop_column("signal_delivery_id")
        batch_op.drop_column("signals")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_queue_id")
        batch_op.drop_column("verdict")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("policy_window_size")
        batch_op.drop_column("policy_window")
        batch_op.drop_column("status_since")
        batch_op.drop_column("status_reply")
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bounce_events_review")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("evidence")
    op.drop_table("domain_holds")
