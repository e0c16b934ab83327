"""Rate limits: per client per minute and per day, plus a global daily cap.

Clients are named by a salted SHA-256 of their IP address (the raw IP is never stored). The
counters are fixed windows (`INCR` + expiry) kept in memory by default, or in Redis when
several server processes must share them:

    limiter = RateLimiter(RateConfig(per_minute=5), backend=make_backend("redis://127.0.0.1:6379/0"))
    limiter.hit(client_key("203.0.113.9", salt))      # raises SubmissionRejected(429, retry_after=...)
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from steerlab.arena.validation import SubmissionRejected
from steerlab.errors import SteerlabError


def client_key(ip: str, salt: str) -> str:
    """A stable, non-reversible client id: sha256(salt, ip), 32 hex digits."""
    return hashlib.sha256(f"{salt}\0{ip}".encode()).hexdigest()[:32]


class CounterBackend(Protocol):
    def incr(self, key: str, window_seconds: int) -> int:
        """Add one to key's counter (created with the given lifetime) and return the new value."""


class MemoryBackend:
    """Counters in this process (reset when it restarts); thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def incr(self, key: str, window_seconds: int) -> int:
        now = self._clock()
        with self._lock:
            if len(self._counts) > 100_000:  # drop expired counters so memory stays bounded
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, now + window_seconds))
            if expires <= now:
                count, expires = 0, now + window_seconds
            count += 1
            self._counts[key] = (count, expires)
            return count


class RedisBackend:
    """Counters in Redis, shared by every server process that uses the same URL."""

    def __init__(self, url: str, prefix: str = "steerlab:arena:") -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise SteerlabError(f"cannot reach Redis at {url}: {error}; check --redis or leave it out for in-memory limits") from None

    def incr(self, key: str, window_seconds: int) -> int:
        pipe = self._client.pipeline(transaction=True)
        full = self.prefix + key
        pipe.incr(full)
        pipe.expire(full, window_seconds + 1, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def close(self) -> None:
        self._client.close()


def make_backend(url: str | None) -> CounterBackend:
    if not url:
        return MemoryBackend()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise SteerlabError(f"limit backend {url!r} is not a Redis URL; use redis://HOST:PORT/DB or leave it out")
    return RedisBackend(url)


@dataclass
class RateConfig:
    """Submissions allowed; 0 disables a limit."""

    per_minute: int = 10
    per_day: int = 200
    global_per_day: int = 20_000


class RateLimiter:
    """Counts one submission attempt per call of `hit`; over a limit it raises 429 with Retry-After."""

    def __init__(self, config: RateConfig, backend: CounterBackend | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.backend = backend or MemoryBackend(clock)
        self._clock = clock

    def _window(self, name: str, key: str, limit: int, seconds: int, what: str) -> None:
        if limit <= 0:
            return
        now = self._clock()
        window = int(now // seconds)
        count = self.backend.incr(f"{name}:{key}:{window}", seconds)
        if count > limit:
            retry = max(1, int((window + 1) * seconds - now) + 1)
            raise SubmissionRejected(
                429, f"rate_limited_{name}", f"{what} ({limit}) reached; try again in {retry} s", retry_after=retry
            )

    def hit(self, client: str) -> None:
        self._window("minute", client, self.config.per_minute, 60, "limit of submissions per minute from your address")
        self._window("day", client, self.config.per_day, 86_400, "limit of submissions per day from your address")
        self._window("global", "all", self.config.global_per_day, 86_400, "the arena's daily submission limit")
