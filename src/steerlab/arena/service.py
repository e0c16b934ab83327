"""The arena's submission logic, shared by the JSON API and the HTML form.

Order of checks for one submission: rate limits (429 + Retry-After) -> handle and text rules
(422) -> duplicate lookup (the existing entry, 200) -> queue capacity (503) -> insert as
pending (committed) -> wake the worker -> wait up to `wait_seconds` for the score
(201 when scored in time, 202 when still pending).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, field
from typing import Optional

from steerlab.arena.limits import RateConfig, RateLimiter, client_key, make_backend
from steerlab.arena.scoring import ArenaScorer
from steerlab.arena.storage import ArenaStore, Entry, Season
from steerlab.arena.validation import Limits, SubmissionRejected, check_handle, check_text, normalized_key
from steerlab.arena.worker import ScoringWorker

ADMIN_TOKEN_ENV = "STEERLAB_ARENA_ADMIN_TOKEN"
SALT_ENV = "STEERLAB_ARENA_SALT"


@dataclass
class ArenaConfig:
    """Settings of one arena server (CLI flags map onto these)."""

    limits: Limits = field(default_factory=Limits)
    rates: RateConfig = field(default_factory=RateConfig)
    redis_url: Optional[str] = None  # shared limit counters; None keeps them in memory
    queue_size: int = 64  # pending entries allowed before 503
    wait_seconds: float = 10.0  # how long POST waits for the score before answering 202
    admin_token: Optional[str] = None  # None: read STEERLAB_ARENA_ADMIN_TOKEN
    salt: Optional[str] = None  # None: STEERLAB_ARENA_SALT, else random per process
    trust_forwarded: bool = False  # take the client address from X-Forwarded-For (behind a proxy only)
    season_name: Optional[str] = None
    title: str = "steerlab arena"


@dataclass
class Outcome:
    entry: Entry
    status_code: int  # 200 duplicate, 201 scored, 202 pending
    duplicate: bool


class ArenaService:
    """One season's submissions: limits, validation, storage and the scoring worker."""

    def __init__(self, scorer: ArenaScorer, store: ArenaStore, config: ArenaConfig) -> None:
        self.scorer = scorer
        self.store = store
        self.config = config
        self.season: Season = store.ensure_season(scorer.describe(), config.season_name)
        self.limiter = RateLimiter(config.rates, make_backend(config.redis_url))
        self.salt = config.salt or os.environ.get(SALT_ENV) or secrets.token_hex(16)
        token = config.admin_token if config.admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
        self.admin_token = token or None
        self.worker = ScoringWorker(store, scorer, self.season.id, queue_size=config.queue_size)

    def client_hash(self, ip: str) -> str:
        return client_key(ip, self.salt)

    def count_tokens(self, text: str) -> int:
        return self.scorer.count_tokens(text)

    def validate(self, handle: object, text: object) -> tuple[str, str]:
        return check_handle(handle), check_text(text, self.config.limits, self.count_tokens)

    async def submit(self, handle: object, text: object, ip: str) -> Outcome:
        client = self.client_hash(ip)
        self.limiter.hit(client)
        handle, text = self.validate(handle, text)
        key = normalized_key(text)
        existing = await asyncio.to_thread(self.store.entry_by_key, self.season.id, key)
        if existing is not None:
            return Outcome(existing, 200, True)
        if await asyncio.to_thread(self.worker.is_full):
            raise SubmissionRejected(
                503, "queue_full", f"the scoring queue is full ({self.config.queue_size} entries waiting); try again in a minute",
                retry_after=30,
            )
        entry, created = await asyncio.to_thread(self.store.add_entry, self.season.id, handle, text, key, client)
        if not created:
            return Outcome(entry, 200, True)
        current = await self.worker.wait_for(entry.id, self.config.wait_seconds)
        entry = current or entry
        return Outcome(entry, 202 if entry.status == "pending" else 201, False)

    def check_admin(self, authorization: Optional[str]) -> None:
        """401 without a bearer token, 403 with a wrong one or when no admin token is configured."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise SubmissionRejected(401, "admin_unauthenticated", "send 'Authorization: Bearer <admin token>'")
        given = authorization[7:].strip()
        if self.admin_token is None:
            raise SubmissionRejected(403, "admin_disabled", f"admin actions are disabled; set {ADMIN_TOKEN_ENV} on the server")
        if not secrets.compare_digest(given.encode(), self.admin_token.encode()):
            raise SubmissionRejected(403, "admin_forbidden", "the admin token is wrong")
