"""tenant company scope, time-entry defaults, note visibility and board statuses

Revision ID: cw0002
Revises: cw0001
Create Date: 2026-11-26 00:20:00

Existing tenants keep today's behaviour: their company scope is ``unset`` (every company's
tickets, with a warning in the admin view until an admin chooses), notes stay as the seed sent
them only when the caller asks; new columns are nullable or have server defaults, so the
upgrade never needs ConnectWise.
"""

import sqlalchemy as sa
from alembic import op

revision = "cw0002"
down_revision = "cw0001"
branch_labels = None
depends_on = None

CREDENTIALS = "connectwise_credentials"
CHANGE_LOG = "connectwise_change_log"


def upgrade() -> None:
    with op.batch_alter_table(CREDENTIALS) as batch:
        batch.add_column(
            sa.Column("company_scope", sa.String(length=8), nullable=False, server_default="unset")
        )
        batch.add_column(sa.Column("companies", sa.Text(), nullable=True))
        batch.add_column(sa.Column("work_type", sa.Text(), nullable=True))
        batch.add_column(sa.Column("work_role", sa.Text(), nullable=True))
        batch.add_column(sa.Column("billable_option", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column(
                "note_visibility", sa.String(length=16), nullable=False, server_default="internal"
            )
        )
        batch.add_column(
            sa.Column("email_contact", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("board_statuses", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("ticket_policy", sa.String(length=8), nullable=False, server_default="refuse")
        )
    with op.batch_alter_table(CHANGE_LOG) as batch:
        batch.add_column(sa.Column("visibility", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("auto_status", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table(CHANGE_LOG) as batch:
        batch.drop_column("auto_status")
        batch.drop_column("visibility")
    with op.batch_alter_table(CREDENTIALS) as batch:
        for column in (
            "ticket_policy",
            "board_statuses",
            "email_contact",
            "note_visibility",
            "billable_option",
            "work_role",
            "work_type",
            "companies",
            "company_scope",
        ):
            batch.drop_column(column)
