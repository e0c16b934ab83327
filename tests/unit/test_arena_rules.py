"""Arena rules: submission checks, duplicate keys, rate limits (memory and real Redis), export format."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from steerlab.arena import ArenaStore, export_entries, load_entries
from steerlab.arena.limits import MemoryBackend, RateConfig, RateLimiter, RedisBackend, client_key, make_backend
from steerlab.arena.validation import Limits, SubmissionRejected, check_handle, check_text, normalized_key
from steerlab.errors import SteerlabError

REDIS_URL = "redis://127.0.0.1:6379/0"


def count_words(text: str) -> int:
    return len(text.split())


def test_normalized_key_folds_case_width_and_spacing():
    assert normalized_key("  Be   KIND\u3000to  people ") == normalized_key("be kind to people")
    assert normalized_key("ＢＥ ｋｉｎｄ") == "be kind"  # NFKC folds full-width forms
    assert normalized_key("Straße") == normalized_key("STRASSE")  # case folding, not lower()
    assert normalized_key("be kind") != normalized_key("be kinder")


@pytest.mark.parametrize("handle", ["alice", "Bob_99", "x", "a.b-c", "A" * 32])
def test_good_handles(handle):
    assert check_handle(handle) == handle


@pytest.mark.parametrize("handle", ["", "-lead", "has space", "<script>", "é", "A" * 33, None, 5])
def test_bad_handles_are_rejected_with_the_rule(handle):
    with pytest.raises(SubmissionRejected) as caught:
        check_handle(handle)
    assert caught.value.status == 422 and caught.value.field == "handle"
    assert "letters, digits" in caught.value.message


def test_text_rules():
    limits = Limits(max_chars=20, max_tokens=3)
    assert check_text("  be kind  ", limits, count_words) == "be kind"
    cases = {
        "x" * 21: ("text_too_long", "21 characters; the limit is 20"),
        "a b c d": ("text_too_many_tokens", "4 tokens long; the limit is 3"),
        "bad\x00byte": ("text_control_characters", "U+0000"),
        "line\nbreak": ("text_control_characters", "U+000A"),
        "rtl\u202eoverride": ("text_control_characters", "U+202E"),
        "   ": ("text_empty", "empty"),
    }
    for text, (code, message) in cases.items():
        with pytest.raises(SubmissionRejected) as caught:
            check_text(text, limits, count_words)
        assert caught.value.code == code and message in caught.value.message
    with pytest.raises(SubmissionRejected, match="must be a string"):
        check_text(None, limits, count_words)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_limits_per_minute_day_and_global():
    clock = FakeClock(60 * 1000 + 10)
    limiter = RateLimiter(RateConfig(per_minute=2, per_day=3, global_per_day=5), MemoryBackend(clock), clock)
    limiter.hit("a")
    limiter.hit("a")
    with pytest.raises(SubmissionRejected) as caught:
        limiter.hit("a")
    assert caught.value.status == 429 and caught.value.code == "rate_limited_minute"
    assert 1 <= caught.value.retry_after <= 51
    clock.now += 60  # next minute: one more passes, then the day limit of 3 (refused attempts not counted)
    limiter.hit("a")
    with pytest.raises(SubmissionRejected) as caught:
        limiter.hit("a")
    assert caught.value.code == "rate_limited_day" and caught.value.retry_after > 60
    limiter.hit("b")
    limiter.hit("c")  # a, a, a, b, c: the global count is 5
    with pytest.raises(SubmissionRejected) as caught:
        limiter.hit("d")
    assert caught.value.code == "rate_limited_global"


def test_client_key_is_salted_and_not_the_ip():
    key = client_key("203.0.113.9", "salt-1")
    assert "203.0.113.9" not in key and len(key) == 32
    assert key == client_key("203.0.113.9", "salt-1") != client_key("203.0.113.9", "salt-2")


def test_redis_limits_are_shared_between_processes():
    """Two limiters on the real Redis (as two server processes would be) share one counter."""
    prefix = f"steerlab:test:{uuid.uuid4().hex}:"
    first, second = RedisBackend(REDIS_URL, prefix), RedisBackend(REDIS_URL, prefix)
    config = RateConfig(per_minute=3, per_day=0, global_per_day=0)
    try:
        RateLimiter(config, first).hit("client")
        RateLimiter(config, second).hit("client")
        RateLimiter(config, first).hit("client")
        with pytest.raises(SubmissionRejected) as caught:
            RateLimiter(config, second).hit("client")
        assert caught.value.status == 429 and caught.value.retry_after >= 1
        ttl = first._client.ttl(next(iter(first._client.scan_iter(prefix + "*"))))
        assert 0 < ttl <= 61  # counters expire with their window
    finally:
        for key in first._client.scan_iter(prefix + "*"):
            first._client.delete(key)
        first.close()
        second.close()


def test_make_backend_errors():
    assert isinstance(make_backend(None), MemoryBackend)
    with pytest.raises(SteerlabError, match="not a Redis URL"):
        make_backend("http://127.0.0.1:6379")
    with pytest.raises(SteerlabError, match="cannot reach Redis"):
        make_backend("redis://127.0.0.1:1/0")


SEASON = dict(model="tiny", model_revision="local", direction_hash="abc", direction_name="hv", layer=1,
              probe_set="neutral-probes", probes_hash="def")


def test_duplicate_key_is_race_safe(tmp_path):
    store = ArenaStore(f"sqlite:///{tmp_path / 'arena.db'}")
    season = store.ensure_season(SEASON)
    results = []

    def add(i: int):
        results.append(store.add_entry(season.id, f"user{i}", "Be Kind", normalized_key("Be Kind"), "hash"))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({entry.id for entry, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_export_round_trip_jsonl_and_csv(tmp_path):
    store = ArenaStore(f"sqlite:///{tmp_path / 'arena.db'}")
    season = store.ensure_season(SEASON)
    texts = ['Be "kind", always', "hell", "Ünïcödé, with comma"]
    for i, text in enumerate(texts):
        entry, _ = store.add_entry(season.id, f"user{i}", text, normalized_key(text), "hash")
        store.save_score(entry.id, 0.01 * (i - 1), 0.5 * i, [0.1, -0.2])
    pending, _ = store.add_entry(season.id, "late", "still pending", "still pending", "hash")
    store.set_hidden(1, True)
    for name in ("entries.jsonl", "entries.csv"):
        out = tmp_path / name
        assert export_entries(store, out) == 3  # the hidden one is left out
        rows = load_entries(out)
        assert [row["text"] for row in rows] == texts[1:] + ["still pending"]
        first = rows[0]
        assert first["score"] == 0.0 and first["spec_z"] == 0.5 and first["shifts"] == [0.1, -0.2]
        assert (first["season"], first["model"], first["layer"], first["handle"]) == (season.id, "tiny", 1, "user1")
        assert rows[-1]["score"] is None and rows[-1]["status"] == "pending"
        assert rows[0]["format_version"] == 1
    assert len(load_entries(_export(store, tmp_path / "all.jsonl", include_hidden=True))) == 4
    assert len(load_entries(_export(store, tmp_path / "scored.csv", scored_only=True))) == 2
    with pytest.raises(SteerlabError, match=".jsonl or .csv"):
        export_entries(store, tmp_path / "entries.txt")
    assert not (tmp_path / "entries.txt").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"format_version": 1}) + "\n{broken\n")
    with pytest.raises(SteerlabError, match="bad.jsonl:2"):
        load_entries(bad)
    assert pending.status == "pending"


def _export(store, path, include_hidden=False, scored_only=False):
    export_entries(store, path, include_hidden=include_hidden, scored_only=scored_only)
    return path


def test_migrations_match_the_table_definitions(tmp_path):
    """The shipped Alembic migrations build exactly the schema storage.py declares, and re-running is a no-op."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from steerlab.arena.storage import metadata

    store = ArenaStore(f"sqlite:///{tmp_path / 'arena.db'}")
    ArenaStore(f"sqlite:///{tmp_path / 'arena.db'}")  # second start: already at head
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001_initial"
