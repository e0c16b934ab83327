"""Arena HTTP API on real SQLite and the real PostgreSQL server (tiny random model for scoring).

PostgreSQL: 127.0.0.1:5432 database `test` (override with STEERLAB_TEST_POSTGRES_URL); each
test gets its own schema, dropped afterwards. An unreachable server fails these tests.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from conftest import build_tiny
from steerlab.arena import ArenaScorer, ArenaStore
from steerlab.arena.app import create_app
from steerlab.arena.limits import RateConfig
from steerlab.arena.service import ArenaConfig
from steerlab.arena.validation import Limits
from steerlab.directions import Direction

import torch

POSTGRES_URL = os.environ.get("STEERLAB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = "s3cret-admin"


@pytest.fixture(scope="module")
def scorer() -> ArenaScorer:
    lm = build_tiny("llama")
    generator = torch.Generator().manual_seed(5)
    vectors = torch.nn.functional.normalize(torch.randn(lm.n_layers, lm.hidden_size, generator=generator), dim=1)
    return ArenaScorer(lm, Direction(vectors, list(range(lm.n_layers)), {"model": lm.name, "n_model_layers": lm.n_layers}))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'arena.db'}"
        return
    schema = f"arena_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_app(scorer, url, **overrides):
    config = ArenaConfig(
        limits=overrides.pop("limits", Limits(max_chars=80, max_tokens=40)),
        rates=overrides.pop("rates", RateConfig(per_minute=100, per_day=1000, global_per_day=10000)),
        admin_token=overrides.pop("admin_token", ADMIN), salt=overrides.pop("salt", "test-salt"), wait_seconds=overrides.pop("wait_seconds", 30.0),
        **overrides,
    )
    store = ArenaStore(url)
    return create_app(scorer, store, config), store


def submit(client, text, handle="alice", **kwargs):
    return client.post("/api/submissions", json={"handle": handle, "text": text}, **kwargs)


def test_submission_is_scored_ranked_and_deduplicated(scorer, db_url):
    app, store = make_app(scorer, db_url)
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"
        first = submit(client, "A kind neighbour helps")
        assert first.status_code == 201, first.text
        entry = first.json()
        expected = scorer.score("A kind neighbour helps")
        assert entry["status"] == "scored" and entry["score"] == pytest.approx(expected.score, abs=1e-12)
        assert entry["spec_z"] == pytest.approx(expected.spec_z, abs=1e-9) and len(entry["shifts"]) == 16
        again = submit(client, "  a KIND   neighbour\u3000helps ", handle="bob")
        assert again.status_code == 200 and again.json()["id"] == entry["id"] and again.json()["duplicate"]
        assert again.json()["handle"] == "alice"
        others = ["He ignored the request", "The cat sat", "Numbers like 1234"]
        for text in others:
            assert submit(client, text).status_code == 201
        scores = {e["text"]: e["score"] for e in (client.get(f"/api/submissions/{i}").json() for i in range(1, 5))}
        pro = client.get("/api/leaderboard", params={"side": "pro", "limit": 10}).json()["entries"]
        anti = client.get("/api/leaderboard", params={"side": "anti", "limit": 2}).json()["entries"]
        assert [row["text"] for row in pro] == sorted(scores, key=scores.get, reverse=True)
        assert [row["text"] for row in anti] == sorted(scores, key=scores.get)[:2]
        assert [row["rank"] for row in pro] == [1, 2, 3, 4]
        assert client.get(f"/api/submissions/{entry['id']}").json()["score"] == entry["score"]
    store.close()


def test_rejections_are_clear_json(scorer, db_url):
    app, store = make_app(scorer, db_url, rates=RateConfig(per_minute=6, per_day=100, global_per_day=1000))
    with TestClient(app) as client:
        cases = [
            (submit(client, "x" * 81), 422, "text_too_long", "81 characters"),
            (submit(client, "tab\there"), 422, "text_control_characters", "U+0009"),
            (submit(client, "fine text", handle="no spaces allowed"), 422, "handle_invalid", "letters, digits"),
            (client.post("/api/submissions", json={"handle": "alice"}), 422, "invalid_request", "text"),
            (client.post("/api/submissions", content=b"x" * 20_000, headers={"content-type": "application/json"}),
             413, "body_too_large", "bytes"),
            (client.get("/api/submissions/999"), 404, "entry_not_found", "does not exist"),
            (client.get("/api/leaderboard", params={"side": "sideways"}), 422, "invalid_request", "side"),
        ]
        for response, status, code, words in cases:
            assert response.status_code == status, response.text
            error = response.json()["error"]
            assert error["code"] == code and words in error["message"], error
        for _ in range(3):
            submit(client, "x" * 81)
        limited = submit(client, "one more")  # the 7th attempt in this minute (the 413 never reached the limiter)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert "per minute" in limited.json()["error"]["message"]
    store.close()


def test_queue_full_answers_503_and_pending_is_kept(scorer, db_url):
    app, store = make_app(scorer, db_url, queue_size=1, wait_seconds=0.0)
    client = TestClient(app)  # no lifespan: the worker does not run, so entries stay pending
    assert client.get("/health").status_code == 503
    accepted = submit(client, "first text")
    assert accepted.status_code == 202 and accepted.json()["status"] == "pending"
    full = submit(client, "second text")
    assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full"
    assert "Retry-After" in full.headers
    assert submit(client, "FIRST text").status_code == 200  # a duplicate needs no queue slot
    # a restarted server scores what was left pending
    app2, store2 = make_app(scorer, db_url, wait_seconds=0.0)
    with TestClient(app2) as client2:
        entry = None
        for _ in range(100):
            entry = client2.get(f"/api/submissions/{accepted.json()['id']}").json()
            if entry["status"] == "scored":
                break
            import time

            time.sleep(0.05)
        assert entry["status"] == "scored" and entry["score"] == pytest.approx(scorer.score("first text").score)
    store.close()
    store2.close()


def test_admin_hide_and_unhide(scorer, db_url):
    app, store = make_app(scorer, db_url)
    with TestClient(app) as client:
        entry_id = submit(client, "to be hidden").json()["id"]
        assert client.post(f"/api/admin/submissions/{entry_id}/hide").status_code == 401
        wrong = client.post(f"/api/admin/submissions/{entry_id}/hide", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "admin_forbidden"
        auth = {"Authorization": f"Bearer {ADMIN}"}
        assert client.post(f"/api/admin/submissions/{entry_id}/hide", headers=auth).json()["hidden"] is True
        assert client.get(f"/api/submissions/{entry_id}").status_code == 404
        boards = [client.get("/api/leaderboard", params={"side": side}).json()["entries"] for side in ("pro", "anti")]
        assert boards == [[], []]
        assert client.get(f"/entries/{entry_id}").status_code == 404
        assert client.post(f"/api/admin/submissions/{entry_id}/unhide", headers=auth).json()["hidden"] is False
        boards = [client.get("/api/leaderboard", params={"side": side}).json()["entries"] for side in ("pro", "anti")]
        assert [len(board) for board in boards] == [1, 1]
        assert client.post("/api/admin/submissions/4242/hide", headers=auth).status_code == 404
    store.close()
    app2, store2 = make_app(scorer, db_url, admin_token="")
    with TestClient(app2) as client:
        disabled = client.post("/api/admin/submissions/1/hide", headers={"Authorization": f"Bearer {ADMIN}"})
        assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "admin_disabled"
    store2.close()


def test_pages_escape_user_text_and_seasons_stay_readable(scorer, db_url):
    app, store = make_app(scorer, db_url)
    nasty = "<script>alert(1)</script> & co"
    with TestClient(app) as client:
        entry_id = submit(client, nasty, handle="mallory").json()["id"]
        for path in ("/", "/board/pro", "/board/anti", f"/entries/{entry_id}"):
            html = client.get(path).text
            assert "<script>" not in html
        page = client.get(f"/entries/{entry_id}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page and "per-probe shifts" in page
        assert "Limitations" in client.get("/about").text
        assert "default-src 'self'" in client.get("/").headers["content-security-policy"]
        form = client.post("/submit", data={"handle": "bad handle", "text": "hi"})
        assert form.status_code == 422 and "letters, digits" in form.text
        done = client.post("/submit", data={"handle": "carol", "text": "form text"}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].startswith("/entries/")
    store.close()
    other = ArenaScorer(scorer.lm, _direction_like(scorer), layer=2, probes=scorer.probes)
    app2, store2 = make_app(other, db_url)
    with TestClient(app2) as client:
        seasons = client.get("/api/seasons").json()
        assert [s["active"] for s in seasons] == [False, True] and seasons[1]["layer"] == 2
        assert client.get("/api/leaderboard", params={"side": "pro"}).json()["entries"] == []
        old = [row for side in ("pro", "anti")
               for row in client.get("/api/leaderboard", params={"side": side, "season": seasons[0]["id"]}).json()["entries"]]
        assert sorted(row["handle"] for row in old) == ["carol", "carol", "mallory", "mallory"]
        assert "season 1" in client.get("/", params={"season": seasons[0]["id"]}).text
        assert client.get("/api/leaderboard", params={"side": "pro", "season": 99}).status_code == 404
        # the same text is a new entry in the new season
        assert submit(client, nasty).status_code == 201
    store2.close()
    app3, store3 = make_app(scorer, db_url)  # back to the first configuration: its season reopens
    with TestClient(app3) as client:
        assert [s["active"] for s in client.get("/api/seasons").json()] == [True, False]
        assert submit(client, nasty).json()["duplicate"] is True
    store3.close()


def _direction_like(scorer: ArenaScorer) -> Direction:
    lm = scorer.lm
    vectors = torch.nn.functional.normalize(torch.randn(lm.n_layers, lm.hidden_size), dim=1)
    return Direction(vectors, list(range(lm.n_layers)), {"model": lm.name})


def test_two_servers_share_rate_limits_through_redis(scorer, tmp_path):
    """Two app instances (as two processes would be) on one database and the real Redis: one shared limit."""
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    rates = RateConfig(per_minute=3, per_day=0, global_per_day=0)
    salt = f"redis-{uuid.uuid4().hex}"  # a fresh client key, so reruns never meet old counters
    apps = [make_app(scorer, url, rates=rates, redis_url="redis://127.0.0.1:6379/0", salt=salt) for _ in range(2)]
    with TestClient(apps[0][0]) as first, TestClient(apps[1][0]) as second:
        codes = [submit(client, f"shared limit {i}").status_code for i, client in enumerate([first, second, first, second])]
        assert codes[:3] == [201, 201, 201] and codes[3] == 429
        assert submit(first, "shared limit 0").status_code == 429  # duplicates count as attempts too
    for _, store in apps:
        store.close()
