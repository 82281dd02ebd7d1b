"""import warnings: rows imported all the same that the operator should look at

Revision ID: 0010_import_warnings
Revises: 0009_campaign_trust
Create Date: 2026-12-04 10:00:00.000000

``import_jobs.warning_count`` counts them (an address only a relay with SMTPUTF8 can deliver);
the first of them are stored beside the row errors in ``import_job_errors``, whose new ``kind``
tells the two apart. Jobs and rows from before are errors with no warnings, as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_import_warnings"
down_revision = "0009_campaign_trust"
branch_labels = None
depends_on = None

KINDS = ("error", "warning")


def upgrade() -> None:
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("warning_count", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("import_job_errors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(*KINDS, name="importnotekind", native_enum=False, length=32),
                server_default="error",
                nullable=False,
            )
        )


def downgrade() -> None:
    # Without their kind the warnings would read as errors of the rows they were imported from.
    op.execute(sa.text("DELETE FROM import_job_errors WHERE kind = 'warning'"))
    with op.batch_alter_table("import_job_errors", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("warning_count")
