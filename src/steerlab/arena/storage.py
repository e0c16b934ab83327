"""Arena storage: seasons and entries in SQL (SQLite file with WAL by default, PostgreSQL by URL).

    store = ArenaStore("sqlite:///arena.db")            # runs the Alembic migrations shipped here
    season = store.ensure_season(scorer.describe())     # same model/direction/layer/probes: same season
    entry, created = store.add_entry(season.id, "alice", "Be kind", key, client_hash)

Schema (migration 0001): `arena_seasons` (model, revision, direction hash, layer, probe set;
one active) and `arena_entries` (handle, text, normalised key unique per season, status
pending|scored|failed, score, spec_z, shifts JSON, hidden flag, salted client hash — never a
raw IP). An entry is committed as `pending` before it is scored, so a crash loses nothing;
`pending_ids` is the queue scoring workers drain (several processes may share it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from steerlab.errors import SteerlabError

metadata = sa.MetaData()

seasons = sa.Table(
    "arena_seasons",
    metadata,
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

entries = sa.Table(
    "arena_entries",
    metadata,
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
sa.Index("ix_arena_entries_board", entries.c.season_id, entries.c.status, entries.c.score)

SEASON_FIELDS = ("model", "model_revision", "direction_hash", "layer", "probe_set", "probes_hash")


@dataclass
class Season:
    id: int
    name: str
    model: str
    model_revision: str
    direction_hash: str
    direction_name: str
    layer: int
    probe_set: str
    probes_hash: str
    active: bool
    created: datetime


@dataclass
class Entry:
    id: int
    season_id: int
    handle: str
    text: str
    status: str  # pending | scored | failed
    score: Optional[float]
    spec_z: Optional[float]
    shifts: Optional[list[float]]
    error: Optional[str]
    hidden: bool
    created: datetime
    scored_at: Optional[datetime]

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "season": self.season_id,
            "handle": self.handle,
            "text": self.text,
            "status": self.status,
            "score": self.score,
            "spec_z": self.spec_z,
            "shifts": self.shifts,
            "error": self.error,
            "hidden": self.hidden,
            "created": _iso(self.created),
            "scored_at": _iso(self.scored_at),
        }


def _iso(moment: Optional[datetime]) -> Optional[str]:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def normalize_url(url: str) -> str:
    """Accept a bare file path or `postgresql://` (meaning psycopg 3) as well as full SQLAlchemy URLs."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a committed entry survives a killed process
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic, scripts shipped in this package)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _season(row) -> Season:
    return Season(**{key: row._mapping[key] for key in Season.__dataclass_fields__})


def _entry(row) -> Entry:
    values = dict(row._mapping)
    shifts = values.pop("shifts")
    return Entry(
        shifts=json.loads(shifts) if shifts else None,
        **{key: values[key] for key in Entry.__dataclass_fields__ if key != "shifts"},
    )


class ArenaStore:
    """All database access of the arena; safe to share between threads."""

    def __init__(self, url: str, run_migrations: bool = True) -> None:
        self.url = normalize_url(url)
        try:
            self.engine = make_engine(self.url)
            if run_migrations:
                migrate(self.engine)
        except sa.exc.OperationalError as error:
            raise SteerlabError(f"cannot open the arena database {self.url}: {error.orig}; check --db") from None

    def close(self) -> None:
        self.engine.dispose()

    # seasons
    def ensure_season(self, description: dict, name: str | None = None) -> Season:
        """The season that matches description, made active; a new one if none matches (old ones stay readable).

        Going back to an earlier configuration reopens that earlier season rather than starting another.
        """
        with self.engine.begin() as connection:
            matching = connection.execute(
                sa.select(seasons).where(*(seasons.c[key] == description[key] for key in SEASON_FIELDS))
                .order_by(seasons.c.id.desc())
            ).first()
            if matching is not None:
                if not matching.active:
                    connection.execute(seasons.update().values(active=seasons.c.id == matching.id))
                return _season(connection.execute(sa.select(seasons).where(seasons.c.id == matching.id)).one())
            count = connection.execute(sa.select(sa.func.count()).select_from(seasons)).scalar_one()
            connection.execute(seasons.update().values(active=False))
            values = {key: description[key] for key in SEASON_FIELDS}
            values.update(
                name=name or f"season {count + 1}",
                direction_name=str(description.get("direction_name", "direction"))[:300],
                active=True,
                created=_now(),
            )
            new_id = connection.execute(seasons.insert().values(**values)).inserted_primary_key[0]
            return _season(connection.execute(sa.select(seasons).where(seasons.c.id == new_id)).one())

    def seasons(self) -> list[Season]:
        with self.engine.connect() as connection:
            return [_season(row) for row in connection.execute(sa.select(seasons).order_by(seasons.c.id))]

    def season(self, season_id: int) -> Optional[Season]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(seasons).where(seasons.c.id == season_id)).first()
        return _season(row) if row else None

    # entries
    def add_entry(self, season_id: int, handle: str, text: str, norm_key: str, client_hash: str) -> tuple[Entry, bool]:
        """Insert a pending entry, or return the season's existing entry with the same key (created=False).

        The unique constraint decides between racing requests: the loser's insert fails and it
        reads the winner's row.
        """
        values = dict(
            season_id=season_id, handle=handle, text=text, norm_key=norm_key, status="pending",
            client_hash=client_hash, hidden=False, created=_now(),
        )
        existing = self.entry_by_key(season_id, norm_key)
        if existing is not None:
            return existing, False
        try:
            with self.engine.begin() as connection:
                new_id = connection.execute(entries.insert().values(**values)).inserted_primary_key[0]
        except IntegrityError:
            existing = self.entry_by_key(season_id, norm_key)
            if existing is None:
                raise
            return existing, False
        entry = self.entry(new_id)
        assert entry is not None
        return entry, True

    def entry_by_key(self, season_id: int, norm_key: str) -> Optional[Entry]:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(entries).where(entries.c.season_id == season_id, entries.c.norm_key == norm_key)
            ).first()
        return _entry(row) if row else None

    def entry(self, entry_id: int) -> Optional[Entry]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(entries).where(entries.c.id == entry_id)).first()
        return _entry(row) if row else None

    def pending_ids(self, season_id: int, limit: int = 100) -> list[int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(entries.c.id)
                .where(entries.c.season_id == season_id, entries.c.status == "pending")
                .order_by(entries.c.id)
                .limit(limit)
            )
            return [row[0] for row in rows]

    def count_pending(self, season_id: int) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(entries)
                .where(entries.c.season_id == season_id, entries.c.status == "pending")
            ).scalar_one()

    def save_score(self, entry_id: int, score: float, spec_z: float, shifts: list[float]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                entries.update().where(entries.c.id == entry_id).values(
                    status="scored", score=score, spec_z=spec_z, shifts=json.dumps(shifts), error=None, scored_at=_now()
                )
            )

    def save_failure(self, entry_id: int, message: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                entries.update().where(entries.c.id == entry_id).values(status="failed", error=message[:1000], scored_at=_now())
            )

    def set_hidden(self, entry_id: int, hidden: bool) -> Optional[Entry]:
        with self.engine.begin() as connection:
            result = connection.execute(entries.update().where(entries.c.id == entry_id).values(hidden=hidden))
        return self.entry(entry_id) if result.rowcount else None

    def leaderboard(self, season_id: int, side: str, limit: int = 20, offset: int = 0) -> list[Entry]:
        """Scored, visible entries ranked: `pro` highest score first, `anti` lowest first (ties: older first).

        Both boards rank every entry rather than splitting by sign: on some models nearly every prefix
        lowers the cosine (gemma-3-270m at layer 7 does), and "most pro" then means "least negative".
        """
        if side not in ("pro", "anti"):
            raise SteerlabError(f"unknown board side {side!r}; use pro or anti")
        order = entries.c.score.desc() if side == "pro" else entries.c.score.asc()
        query = (
            sa.select(entries)
            .where(entries.c.season_id == season_id, entries.c.status == "scored", entries.c.hidden.is_(False))
            .order_by(order, entries.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def export_rows(self, season_id: int | None = None, include_hidden: bool = False) -> list[dict]:
        """Entries joined with their season, oldest first, as plain dicts for export."""
        query = sa.select(entries, seasons.c.name.label("season_name"), seasons.c.model, seasons.c.model_revision,
                          seasons.c.direction_hash, seasons.c.direction_name, seasons.c.layer, seasons.c.probe_set,
                          seasons.c.probes_hash).join(seasons, entries.c.season_id == seasons.c.id)
        if season_id is not None:
            query = query.where(entries.c.season_id == season_id)
        if not include_hidden:
            query = query.where(entries.c.hidden.is_(False))
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by(entries.c.id))]
