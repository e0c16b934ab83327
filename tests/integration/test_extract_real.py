"""Extraction on the real SmolLM2 135M: all layers, independent check, padding, early stop, models list."""

import subprocess
import sys

import pytest
import torch

from steerlab.activations import read_residuals
from steerlab.data import load_pairs
from steerlab.directions import extract

pytestmark = pytest.mark.integration

PAIRS = load_pairs("human-values")[::4]  # 40 pairs over all axes keeps the test quick


@pytest.fixture(scope="module")
def smol_direction(smollm):
    return extract(smollm, PAIRS, method="mean_diff", layers="all", progress=False)


def test_extraction_at_every_layer(smollm, smol_direction):
    assert smol_direction.layers == list(range(30))
    assert smol_direction.vectors.shape == (30, 576)
    accuracies = [row["accuracy"] for row in smol_direction.meta["held_out"]]
    assert len(accuracies) == 30 and max(accuracies) >= 0.75  # the concept is readable somewhere


def test_mean_diff_matches_output_hidden_states(smollm, smol_direction):
    """Independent computation: unpadded single-text passes with output_hidden_states."""
    chosen, rejected = [], []
    with torch.no_grad():
        for pair in PAIRS:
            for bucket, text in ((chosen, pair.chosen_text()), (rejected, pair.rejected_text())):
                ids = smollm.tokenizer(text, return_tensors="pt")
                states = smollm.model(**ids, output_hidden_states=True).hidden_states
                bucket.append(torch.stack([states[layer + 1][0, -1] for layer in range(30)]))
    expected = torch.stack(chosen).mean(0) - torch.stack(rejected).mean(0)  # [30, hidden]
    cosines = torch.nn.functional.cosine_similarity(smol_direction.vectors, expected, dim=1)
    assert cosines.min() > 0.999, cosines


def test_padding_side_does_not_change_activations(smollm):
    texts = [p.chosen_text() for p in PAIRS[:12]]
    left = read_residuals(smollm, texts, [3, 15, 29], padding_side="left", progress=False)
    right = read_residuals(smollm, texts, [3, 15, 29], padding_side="right", progress=False)
    relative = (left - right).norm(dim=-1) / right.norm(dim=-1)
    assert relative.max() < 1e-4


def test_early_stop_equals_full_pass(smollm):
    texts = [p.rejected_text() for p in PAIRS[:8]]
    early = read_residuals(smollm, texts, [5], progress=False)
    full = read_residuals(smollm, texts, [5, 29], progress=False)[:, :1]
    torch.testing.assert_close(early, full)


def test_models_list_shows_three_models():
    result = subprocess.run([sys.executable, "-m", "steerlab.cli.main", "models", "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for name in ("gemma-3-270m", "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"):
        assert name in result.stdout
