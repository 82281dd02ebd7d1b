"""import jobs: the uploaded file in chunks, progress and row errors any process can read

Revision ID: 0008_import_uploads
Revises: 0007_web
Create Date: 2026-12-01 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = "0008_import_uploads"
down_revision = "0007_web"
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "done", "failed")
FAILURES = ("input", "fault", "interrupted")


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("upsert", sa.Boolean(), nullable=False),
        sa.Column("reactivate_suppressed", sa.Boolean(), nullable=False),
        sa.Column("check_deliverability", sa.Boolean(), nullable=False),
        sa.Column(
            "legal_basis",
            sa.Enum(
                "consent",
                "contract",
                "legitimate_interest",
                name="legalbasis",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="importjobstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column(
            "failure",
            sa.Enum(*FAILURES, name="importfailure", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("queued_at", newsletter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", newsletter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", newsletter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", newsletter.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["mailing_lists.id"],
            name=op.f("fk_import_jobs_list_id_mailing_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_table(
        "import_chunks",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_chunks_job_id_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_import_chunks")),
    )
    op.create_table(
        "import_job_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_job_errors_job_id_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job_errors")),
    )
    with op.batch_alter_table("import_job_errors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_job_errors_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("import_job_errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_job_errors_job_id"))
    op.drop_table("import_job_errors")
    op.drop_table("import_chunks")
    op.drop_table("import_jobs")
