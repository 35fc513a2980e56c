"""merge connectwise

What ``flask connectwise migrations merge`` writes: the example app's history and the
extension's ``connectwise`` branch joined, so ``flask db upgrade`` has one head.

Revision ID: ex0002
Revises: ex0001, cw0003
Create Date: 2026-11-26 03:20:00

"""

# revision identifiers, used by Alembic.
revision = "ex0002"
down_revision = ("ex0001", "cw0003")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
