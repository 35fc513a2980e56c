"""change log: whether the ticket was checked before submit

Revision ID: cw0003
Revises: cw0002
Create Date: 2026-11-26 00:50:00

A ticket typed as a number while ConnectWise was slow or down is accepted unverified and read
at delivery. Existing changes were checked before they were recorded: the server default is
true, so the upgrade never needs ConnectWise.
"""

import sqlalchemy as sa
from alembic import op

revision = "cw0003"
down_revision = "cw0002"
branch_labels = None
depends_on = None

CHANGE_LOG = "connectwise_change_log"


def upgrade() -> None:
    with op.batch_alter_table(CHANGE_LOG) as batch:
        batch.add_column(
            sa.Column("ticket_verified", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table(CHANGE_LOG) as batch:
        batch.drop_column("ticket_verified")
