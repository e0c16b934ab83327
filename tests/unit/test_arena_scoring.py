"""Arena scoring on tiny random models: the score and spec_z against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import build_tiny
from steerlab.arena import ArenaScorer, ScoringTimeout, score_parts
from steerlab.arena.scoring import unit_rows
from steerlab.directions import Direction
from steerlab.errors import SteerlabError

PROBES = ["The cat sat on the mat and", "Tomorrow's weather forecast says", "The recipe calls for two cups of"]


def tiny_direction(lm, seed: int = 1) -> Direction:
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(lm.n_layers, lm.hidden_size, generator=generator)  # [layers, hidden]
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    return Direction(vectors, list(range(lm.n_layers)), {"model": lm.name, "n_model_layers": lm.n_layers})


def independent_score(lm, direction: np.ndarray, layer: int, text: str, probes: list[str]) -> tuple[float, float, list[float]]:
    """Straight from the definition: full forward passes with output_hidden_states, one text at a time."""

    def last(text_: str) -> np.ndarray:
        encoded = lm.tokenizer(text_, return_tensors="pt")
        with torch.no_grad():
            out = lm.model(**encoded, output_hidden_states=True)
        return out.hidden_states[layer + 1][0, -1].double().numpy()  # [H]

    d = direction / np.linalg.norm(direction)
    shifts, deltas = [], []
    for probe in probes:
        a, b = last(text + " " + probe), last(probe)
        ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
        shifts.append(float(ua @ d - ub @ d))
        deltas.append(ua - ub)
    delta = np.stack(deltas)  # [P, H]
    score = float(np.mean(shifts))
    spec_z = score / (np.linalg.norm(delta) / math.sqrt(delta.size))
    return score, spec_z, shifts


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2"])
def test_score_matches_output_hidden_states(arch):
    lm = build_tiny(arch)
    direction = tiny_direction(lm)
    scorer = ArenaScorer(lm, direction, probes=PROBES)
    assert scorer.layer == direction.default_layer() == 1
    for text in ["A kind neighbour helps", "He ignored the request"]:
        result = scorer.score(text)
        score, spec_z, shifts = independent_score(lm, direction.vector(1).double().numpy(), 1, text, PROBES)
        assert result.score == pytest.approx(score, abs=1e-6)
        assert result.spec_z == pytest.approx(spec_z, abs=1e-6)
        assert np.allclose(result.shifts, shifts, atol=1e-6)
        assert len(result.shifts) == len(PROBES)


def test_spec_z_closed_form_and_bound():
    rng = np.random.default_rng(0)
    hidden, count = 64, 8
    base = unit_rows(rng.normal(size=(count, hidden)))
    shifted = unit_rows(base + 0.3 * rng.normal(size=(count, hidden)))
    d = unit_rows(rng.normal(size=(1, hidden)))[0]
    parts = score_parts(shifted, base, d)
    delta = shifted - base
    mean = delta.mean(axis=0)
    closed = math.sqrt(hidden) * (mean @ d / np.linalg.norm(mean)) * parts.coherence
    assert parts.spec_z == pytest.approx(closed, rel=1e-9)
    assert 0 <= parts.coherence <= 1
    # the bound sqrt(H) is reached when every probe moves exactly along d
    aligned = score_parts(base + 0.1 * d, base, d)
    assert aligned.spec_z == pytest.approx(math.sqrt(hidden), rel=1e-9)
    assert aligned.coherence == pytest.approx(1.0)


def test_one_batch_per_submission_and_forward_stops_at_layer():
    lm = build_tiny("llama", n_layers=4)
    scorer = ArenaScorer(lm, tiny_direction(lm), layer=1, probes=PROBES)
    calls = {"first": [], "after": 0}
    first = lm.blocks[0].register_forward_hook(lambda _m, inputs, _o: calls["first"].append(inputs[0].shape[0]))
    later = lm.blocks[2].register_forward_hook(lambda *_: calls.__setitem__("after", calls["after"] + 1))
    try:
        scorer.score("A kind neighbour")
    finally:
        first.remove()
        later.remove()
    assert calls["first"] == [len(PROBES)]  # one forward pass, all probes in one batch
    assert calls["after"] == 0  # nothing past layer 1 ran


def test_baseline_cached_per_model_direction_layer_probes():
    lm = build_tiny("llama")
    direction = tiny_direction(lm)
    a = ArenaScorer(lm, direction, probes=PROBES)
    b = ArenaScorer(lm, direction, probes=PROBES)
    assert a.baseline is b.baseline
    assert ArenaScorer(lm, direction, layer=2, probes=PROBES).baseline is not a.baseline
    assert ArenaScorer(lm, direction, probes=PROBES[:2]).baseline is not a.baseline
    other = build_tiny("llama", seed=3)  # same name, other weights: no stale cache
    assert ArenaScorer(other, tiny_direction(other), probes=PROBES).baseline is not a.baseline


def test_score_many_equals_score_and_default_probes():
    lm = build_tiny("qwen2")
    scorer = ArenaScorer(lm, tiny_direction(lm))
    assert len(scorer.probes) == 16  # bundled neutral-probes
    texts = ["Be kind", "hell", ".) {}"]
    many = scorer.score_many(texts)
    assert [r.score for r in many] == [scorer.score(t).score for t in texts]


def test_timeout_stops_the_pass_and_removes_hooks():
    lm = build_tiny("llama")
    scorer = ArenaScorer(lm, tiny_direction(lm), probes=PROBES)
    scorer.timeout = 0.0
    with pytest.raises(ScoringTimeout, match="longer than"):
        scorer.score("A kind neighbour")
    assert all(not block._forward_pre_hooks for block in lm.blocks)
    scorer.timeout = None
    assert math.isfinite(scorer.score("A kind neighbour").score)


def test_bad_inputs_have_clear_errors():
    lm = build_tiny("llama")
    direction = tiny_direction(lm)
    with pytest.raises(SteerlabError, match="out of range"):
        ArenaScorer(lm, direction, layer=9)
    with pytest.raises(SteerlabError, match="hidden size"):
        wrong = Direction(torch.ones(1, 16), [1], {"model": "other"})
        ArenaScorer(lm, wrong)
    with pytest.raises(SteerlabError, match="empty"):
        ArenaScorer(lm, direction, probes=PROBES).score("   ")
    with pytest.raises(SteerlabError, match="probe set is empty"):
        ArenaScorer(lm, direction, probes=[])
