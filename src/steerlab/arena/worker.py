"""The scoring worker: one background thread that drains the season's pending entries.

The queue is the database itself (entries with status `pending`, oldest first), so an entry
accepted before a crash is scored when any worker next starts, and several server processes
sharing one PostgreSQL database can all drain it (scoring is deterministic, so a rare double
scoring writes the same numbers). The HTTP layer bounds the queue (`is_full`) and waits for a
result with `wait_for`, which returns as soon as the entry leaves `pending` or the wait ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Optional

from steerlab.arena.scoring import ArenaScorer
from steerlab.arena.storage import ArenaStore, Entry
from steerlab.errors import SteerlabError

log = logging.getLogger("steerlab.arena")


class ScoringWorker:
    """Scores pending entries of one season in a daemon thread; `wake()` after each insert."""

    def __init__(self, store: ArenaStore, scorer: ArenaScorer, season_id: int, queue_size: int = 64, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.scorer = scorer
        self.season_id = season_id
        self.queue_size = queue_size
        self.poll_seconds = poll_seconds
        self.scored = 0
        self.failed = 0
        self._event = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._waiters: dict[int, list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}
        self._waiters_lock = threading.Lock()

    # lifecycle
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="arena-scoring", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._event.set()

    def is_full(self) -> bool:
        return self.queue_size > 0 and self.store.count_pending(self.season_id) >= self.queue_size

    # the loop
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ids = self.store.pending_ids(self.season_id, limit=16)
            except Exception:  # the database may be briefly unreachable; keep the worker alive
                log.exception("arena worker: cannot read pending entries")
                ids = []
                self._stopping.wait(self.poll_seconds)
            if not ids:
                self._event.wait(self.poll_seconds)
                self._event.clear()
                continue
            for entry_id in ids:
                if self._stopping.is_set():
                    return
                self.score_one(entry_id)

    def score_one(self, entry_id: int) -> Optional[Entry]:
        """Score one pending entry now (also used by tests); returns the stored entry."""
        try:
            entry = self.store.entry(entry_id)
            if entry is not None and entry.status == "pending":
                try:
                    result = self.scorer.score(entry.text)
                except SteerlabError as error:
                    self.store.save_failure(entry_id, str(error))
                    self.failed += 1
                except Exception as error:  # a bug must not kill the worker or leave the entry pending forever
                    log.exception("arena worker: scoring entry %s failed", entry_id)
                    self.store.save_failure(entry_id, f"internal error while scoring ({type(error).__name__})")
                    self.failed += 1
                else:
                    self.store.save_score(entry_id, result.score, result.spec_z, result.shifts)
                    self.scored += 1
                entry = self.store.entry(entry_id)
        except Exception:
            log.exception("arena worker: cannot store the result of entry %s", entry_id)
            return None
        finally:
            self._notify(entry_id)
        return entry

    # waiting from the event loop
    def _notify(self, entry_id: int) -> None:
        with self._waiters_lock:
            waiters = self._waiters.pop(entry_id, [])
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait_for(self, entry_id: int, timeout: float) -> Optional[Entry]:
        """The entry once it is scored or failed, or as it stands after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        with self._waiters_lock:
            self._waiters.setdefault(entry_id, []).append((loop, future))
        self.wake()
        try:
            entry = await asyncio.to_thread(self.store.entry, entry_id)
            if entry is None or entry.status != "pending" or timeout <= 0:
                return entry
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                pass
            return await asyncio.to_thread(self.store.entry, entry_id)
        finally:
            with self._waiters_lock:
                remaining = [item for item in self._waiters.get(entry_id, []) if item[1] is not future]
                if remaining:
                    self._waiters[entry_id] = remaining
                else:
                    self._waiters.pop(entry_id, None)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
