"""Property-based fuzz of the arena API from its OpenAPI schema (schemathesis): no input gives a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fastapi.testclient import TestClient

from conftest import build_tiny
from steerlab.arena import ArenaScorer, ArenaStore
from steerlab.arena.app import create_app
from steerlab.arena.limits import RateConfig
from steerlab.arena.service import ArenaConfig
from steerlab.directions import Direction


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    lm = build_tiny("llama")
    vectors = torch.nn.functional.normalize(torch.randn(lm.n_layers, lm.hidden_size, generator=torch.Generator().manual_seed(2)), dim=1)
    scorer = ArenaScorer(lm, Direction(vectors, list(range(lm.n_layers)), {"model": lm.name}),
                         probes=["The cat sat on the mat and", "Tomorrow's weather forecast says"])
    store = ArenaStore(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'arena.db'}")
    config = ArenaConfig(rates=RateConfig(per_minute=0, per_day=0, global_per_day=0), queue_size=10_000,
                         wait_seconds=5.0, admin_token="fuzz-admin", salt="fuzz")
    app = create_app(scorer, store, config)
    app.state.service.worker.start()
    yield app
    app.state.service.worker.stop()
    store.close()


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_api_schema_fuzz_finds_no_server_error(fuzz_app, mode):
    """Cases drawn from the OpenAPI schema (valid ones, then ones that break it) over every operation."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    seen: set[str] = set()

    @settings(max_examples=70, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=schema.as_strategy(generation_mode=mode))
    def check(case):
        seen.add(case.operation.label)
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            assert response.json()["error"]["message"]

    check()
    assert {"POST /api/submissions", "GET /api/leaderboard", "GET /api/submissions/{entry_id}"} <= seen


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(handle=st.text(max_size=40), text=st.text(max_size=400))
def test_any_unicode_submission_is_answered_without_5xx(fuzz_app, handle, text):
    client = TestClient(fuzz_app)
    response = client.post("/api/submissions", json={"handle": handle, "text": text})
    assert response.status_code in (200, 201, 202, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"]["code"].startswith(("handle_", "text_"))
    else:
        assert response.json()["text"] and response.json()["status"] in ("pending", "scored", "failed")
