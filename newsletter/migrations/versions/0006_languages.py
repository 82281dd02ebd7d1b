"""languages of bulletins and articles; issue number, mode and excerpt length

Revision ID: 0006_languages
Revises: 0005_evidence
Create Date: 2026-12-01 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_languages"
down_revision = "0005_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lang", sa.String(length=16), server_default="en", nullable=False)
        )
    with op.batch_alter_table("bulletin_imports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lang", sa.String(length=16), server_default="en", nullable=False)
        )
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "mode",
                sa.Enum("full", "excerpt", name="issuemode", native_enum=False, length=32),
                server_default="full",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("excerpt_words", sa.Integer(), nullable=True))
    # Issues made before numbers existed are numbered in the order they were created.
    op.execute("UPDATE issues SET number = id")


def downgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_column("excerpt_words")
        batch_op.drop_column("mode")
        batch_op.drop_column("number")
    with op.batch_alter_table("bulletin_imports", schema=None) as batch_op:
        batch_op.drop_column("lang")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("lang")
