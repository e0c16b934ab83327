"""Initial arena schema: seasons and entries (unique normalised key per season).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_seasons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("model_revision", sa.String(300), nullable=False),
        sa.Column("direction_hash", sa.String(64), nullable=False),
        sa.Column("direction_name", sa.String(300), nullable=False),
        sa.Column("layer", sa.Integer, nullable=False),
        sa.Column("probe_set", sa.String(300), nullable=False),
        sa.Column("probes_hash", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "arena_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("season_id", sa.Integer, sa.ForeignKey("arena_seasons.id"), nullable=False),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("norm_key", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("spec_z", sa.Float, nullable=True),
        sa.Column("shifts", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("client_hash", sa.String(64), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("season_id", "norm_key", name="uq_arena_entries_season_key"),
    )
    op.create_index("ix_arena_entries_board", "arena_entries", ["season_id", "status", "score"])


def downgrade() -> None:
    op.drop_index("ix_arena_entries_board", table_name="arena_entries")
    op.drop_table("arena_entries")
    op.drop_table("arena_seasons")
