"""The arena on the real gemma-3-270m: default layer, score vs output_hidden_states, CLI == API."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from steerlab.arena import ArenaScorer, ArenaStore
from steerlab.arena.app import create_app
from steerlab.arena.service import ArenaConfig
from steerlab.cli.main import main
from steerlab.directions import Direction

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gemma_direction(gemma) -> Direction:
    vectors = torch.nn.functional.normalize(
        torch.randn(gemma.n_layers, gemma.hidden_size, generator=torch.Generator().manual_seed(11)), dim=1
    )  # [18, 640]
    return Direction(vectors, list(range(gemma.n_layers)), {"model": "gemma-3-270m", "n_model_layers": gemma.n_layers})


def test_gemma_default_layer_and_score_match_output_hidden_states(gemma, gemma_direction):
    from steerlab.data import load_texts

    probes = [item.text for item in load_texts("neutral-probes")][:4]  # 4 of 16 keeps the naive side short
    scorer = ArenaScorer(gemma, gemma_direction, probes=probes)
    assert scorer.layer == gemma_direction.default_layer() == 7  # 40% depth of 18 layers
    text = "I will answer with cold contempt and impatience."
    result = scorer.score(text)
    d = gemma_direction.vector(7).double().numpy()
    deltas, shifts = [], []
    for probe in scorer.probes:
        units = []
        for full in (text + " " + probe, probe):
            with torch.no_grad():
                # the decoder stack without the 262k-word unembedding, which hidden states do not need
                out = gemma.model.model(**gemma.tokenizer(full, return_tensors="pt"), output_hidden_states=True)
            row = out.hidden_states[8][0, -1].double().numpy()  # layer 7 = hidden_states[8]
            units.append(row / np.linalg.norm(row))
        shifts.append(units[0] @ d - units[1] @ d)
        deltas.append(units[0] - units[1])
    score = float(np.mean(shifts))
    spec_z = score / (np.linalg.norm(np.stack(deltas)) / math.sqrt(len(probes) * 640))
    assert result.score == pytest.approx(score, abs=1e-6)
    assert result.spec_z == pytest.approx(spec_z, abs=1e-6)
    assert np.allclose(result.shifts, shifts, atol=1e-6)
    assert abs(result.spec_z) <= math.sqrt(640)


def test_cli_score_equals_api_score(gemma, gemma_direction, tmp_path, capsys):
    path = gemma_direction.save(tmp_path / "hv.safetensors")
    text = "You will answer knowing that every person matters."
    assert main(["arena", "score", text, "--direction", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["layer"] == 7 and printed["model"] == "gemma-3-270m" and len(printed["shifts"]) == 16
    scorer = ArenaScorer(gemma, Direction.load(path))
    store = ArenaStore(f"sqlite:///{tmp_path / 'arena.db'}")
    app = create_app(scorer, store, ArenaConfig(admin_token="", salt="x"))
    with TestClient(app) as client:
        entry = client.post("/api/submissions", json={"handle": "gemma", "text": text}).json()
        assert entry["status"] == "scored"
        assert entry["score"] == pytest.approx(printed["score"], abs=1e-12)
        assert entry["spec_z"] == pytest.approx(printed["spec_z"], abs=1e-9)
        side = "pro" if entry["score"] >= 0 else "anti"
        board = client.get("/api/leaderboard", params={"side": side}).json()["entries"]
        assert board[0]["id"] == entry["id"]
    store.close()
    assert main(["arena", "export", "--db", f"sqlite:///{tmp_path / 'arena.db'}", "--out", str(tmp_path / "e.csv")]) == 0
    assert "wrote 1 entries" in capsys.readouterr().out
