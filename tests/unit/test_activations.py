"""Residual reads: agree with output_hidden_states, padding-invariant, stopped early."""

import pytest
import torch

from steerlab.activations import read_residuals, token_positions
from steerlab.errors import SteerlabError

TEXTS = ["The cat sat on the mat", "Hello", "A kind neighbour helps carry the shopping upstairs today", "Numbers 1234"]


def reference_last_token(lm, texts, layer):
    """Independent computation: one text at a time, no padding, hidden_states[layer + 1][-1]."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt")
            out = lm.model(**ids, output_hidden_states=True)
            rows.append(out.hidden_states[layer + 1][0, -1])
    return torch.stack(rows)


def test_matches_output_hidden_states(tiny_lm):
    layers = [0, 2, 3]  # 3 is the last block: hidden_states[-1] includes the final norm
    acts = read_residuals(tiny_lm, TEXTS, layers, batch_size=3, progress=False)
    assert acts.shape == (len(TEXTS), 3, tiny_lm.hidden_size) and acts.dtype == torch.float32
    for column, layer in enumerate(layers):
        torch.testing.assert_close(acts[:, column], reference_last_token(tiny_lm, TEXTS, layer), atol=1e-5, rtol=1e-4)


def test_left_and_right_padding_agree(tiny_lm):
    left = read_residuals(tiny_lm, TEXTS, [1, 3], padding_side="left", batch_size=4, progress=False)
    right = read_residuals(tiny_lm, TEXTS, [1, 3], padding_side="right", batch_size=4, progress=False)
    torch.testing.assert_close(left, right, atol=1e-5, rtol=1e-4)


def test_forward_stops_after_deepest_layer(tiny_llama):
    calls = {"later": 0, "head": 0}
    blocks = tiny_llama.blocks
    hooks = [
        blocks[2].register_forward_hook(lambda *a: calls.__setitem__("later", calls["later"] + 1)),
        tiny_llama.model.lm_head.register_forward_hook(lambda *a: calls.__setitem__("head", calls["head"] + 1)),
    ]
    try:
        early = read_residuals(tiny_llama, TEXTS, [1], progress=False)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"later": 0, "head": 0}
    full = read_residuals(tiny_llama, TEXTS, [1, 3], progress=False)[:, :1]
    torch.testing.assert_close(early, full)


def test_hooks_are_removed_even_after_errors(tiny_llama):
    before = [len(b._forward_hooks) for b in tiny_llama.blocks]
    read_residuals(tiny_llama, TEXTS, [0, 3], progress=False)
    with pytest.raises(SteerlabError):
        read_residuals(tiny_llama, TEXTS, [0, 99], progress=False)
    assert [len(b._forward_hooks) for b in tiny_llama.blocks] == before


def test_positions_first_last_mean(tiny_llama):
    last = read_residuals(tiny_llama, TEXTS, [1], position="last", progress=False)
    minus_one = read_residuals(tiny_llama, TEXTS, [1], position=-1, progress=False)
    torch.testing.assert_close(last, minus_one)
    first = read_residuals(tiny_llama, TEXTS, [1], position=0, padding_side="left", progress=False)
    with torch.no_grad():
        ids = tiny_llama.tokenizer(TEXTS[0], return_tensors="pt")
        hidden = tiny_llama.model(**ids, output_hidden_states=True).hidden_states[2][0]
    torch.testing.assert_close(first[0, 0], hidden[0], atol=1e-5, rtol=1e-4)
    mean = read_residuals(tiny_llama, TEXTS[:1], [1], position="mean", progress=False)
    torch.testing.assert_close(mean[0, 0], hidden.mean(0), atol=1e-5, rtol=1e-4)


def test_token_positions_under_both_paddings():
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert token_positions(right, "last").tolist() == [2, 3]
    assert token_positions(left, "last").tolist() == [3, 3]
    assert token_positions(left, 0).tolist() == [1, 0]
    assert token_positions(right, -2).tolist() == [1, 2]
    with pytest.raises(SteerlabError, match="outside"):
        token_positions(right, 5)


def test_layer_out_of_range_names_valid_range(tiny_llama):
    with pytest.raises(SteerlabError, match=r"layers 0\.\.3"):
        read_residuals(tiny_llama, TEXTS, [4], progress=False)
