"""campaigns an operator can trust: one send per issue and audience; what a lane waits for

Revision ID: 0009_campaign_trust
Revises: 0008_import_uploads
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_campaign_trust"
down_revision = "0008_import_uploads"
branch_labels = None
depends_on = None

# Statuses of a campaign that never mailed anyone: it holds no round (see below).
NEVER_SENT = ("draft", "failed")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_key", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("audience_round", sa.Integer(), nullable=True))
    with op.batch_alter_table("send_lanes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relay_error", sa.Text(), nullable=True))
    _number_existing_campaigns()
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_campaigns_issue_id"), ["issue_id", "audience_key", "audience_round"]
        )


def _number_existing_campaigns() -> None:
    """Campaigns made before the guard: their audience, and rounds 1, 2, … in creation order.

    Earlier versions let the same issue go to the same list twice; those campaigns become the
    rounds they in effect were, so the constraint holds from the first new send on.
    """
    connection = op.get_bind()
    campaigns = connection.execute(
        sa.text("SELECT id, issue_id, segment_id, status FROM campaigns ORDER BY id")
    ).all()
    lists: dict[int, list[int]] = {}
    for campaign_id, list_id in connection.execute(
        sa.text("SELECT campaign_id, list_id FROM campaign_lists")
    ):
        lists.setdefault(campaign_id, []).append(list_id)
    rounds: dict[tuple[int, str], int] = {}
    for campaign_id, issue_id, segment_id, status in campaigns:
        if segment_id is not None:
            key = f"segment:{segment_id}"
        else:
            key = "lists:" + ",".join(str(n) for n in sorted(lists.get(campaign_id, [])))
        number = None
        if status not in NEVER_SENT:
            number = rounds[(issue_id, key)] = rounds.get((issue_id, key), 0) + 1
        connection.execute(
            sa.text(
                "UPDATE campaigns SET audience_key = :key, audience_round = :round WHERE id = :id"
            ),
            {"key": key, "round": number, "id": campaign_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_campaigns_issue_id"), type_="unique")
        batch_op.drop_column("audience_round")
        batch_op.drop_column("audience_key")
    with op.batch_alter_table("send_lanes", schema=None) as batch_op:
        batch_op.drop_column("relay_error")
