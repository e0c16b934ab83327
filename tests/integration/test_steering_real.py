"""Steering on the real packaged models: identity at strength 0, per-row batches, residual norms."""

from __future__ import annotations

import pytest
import torch

from steerlab.steering import SteeringSpec, generate_ids, relative_coef, residual_norms

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

QUESTIONS = ["I found a wallet on the street. What should I do?", "How do I make tea?"]




def unit(hidden: int, seed: int = 0) -> torch.Tensor:
    vector = torch.randn(hidden, generator=torch.Generator().manual_seed(seed))
    return vector / vector.norm()


def test_strength_zero_is_token_identical_on_smollm(smollm):
    vector = unit(smollm.hidden_size)
    plain = generate_ids(smollm, QUESTIONS, max_new_tokens=12)
    zero = generate_ids(smollm, QUESTIONS, specs=[SteeringSpec(10, vector, 0.0)], max_new_tokens=12)
    assert zero == plain


def test_per_row_batch_equals_single_runs_on_smollm(smollm):
    vector = unit(smollm.hidden_size)
    configs = [[], [SteeringSpec(9, vector, relative_coef(smollm, 9, vector, 0.6))],
               [SteeringSpec(12, vector, relative_coef(smollm, 12, vector, -0.6), positions="generated")]]
    together = generate_ids(smollm, [QUESTIONS[0]] * 3, per_row=configs, max_new_tokens=10)
    alone = [generate_ids(smollm, [QUESTIONS[0]], specs=c, max_new_tokens=10)[0] for c in configs]
    assert together == alone
    assert together[1] != together[0]


def test_gemma_norms_grow_and_show_massive_dimensions(gemma):
    stats = residual_norms(gemma)
    means = [stats[layer].mean for layer in range(gemma.n_layers)]
    assert means[-1] > 10 * means[0]
    assert any(stats[layer].massive_dims for layer in range(gemma.n_layers))
    vector = unit(gemma.hidden_size) * 2.0
    assert relative_coef(gemma, 12, vector, 1.0) == pytest.approx(stats[12].mean / 2.0)


def test_base_model_strength_zero_on_gemma(gemma):
    vector = unit(gemma.hidden_size, 3)
    prompts = ["Question: How do I make tea?\nAnswer:"]
    plain = generate_ids(gemma, prompts, max_new_tokens=8)
    assert generate_ids(gemma, prompts, specs=[SteeringSpec(6, vector, 0.0)], max_new_tokens=8) == plain
