"""Injecting a vector into an oracle prompt: placeholder tokens, norm-matched, differentiable.

The oracle reads a vector through placeholder tokens in its prompt. A forward hook on the
output of an early decoder block (block 1 by default) replaces the residual `h` at each
placeholder position by

    h + ||h|| * v / ||v||

so the vector arrives with the norm the model already has there, whatever the vector's own
scale. The hook keeps the autograd graph, so a loss on the oracle's answer has a gradient
with respect to `v` (that is what dreaming optimises).

    ids, slots = build_prompt(tokenizer, placeholder_id, "What is this text about?", layer=6)
    with inject_vectors(lm.blocks[1], slots, vectors):    # vectors [batch, hidden]
        logits = model(input_ids=ids).logits
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from steerlab.activations import block_output
from steerlab.errors import SteerlabError

DEFAULT_PLACEHOLDER = " ?"
DEFAULT_INJECT_BLOCK = 1


def placeholder_token_id(tokenizer, placeholder: str) -> int:
    """The single token id of `placeholder`; an error when the tokenizer splits it."""
    ids = tokenizer.encode(placeholder, add_special_tokens=False)
    if len(ids) != 1:
        raise SteerlabError(
            f"placeholder {placeholder!r} encodes as {len(ids)} tokens {ids} with this tokenizer; the oracle needs a "
            f"string that is exactly one token (for example ' ?' or '?'); pass another --placeholder"
        )
    return int(ids[0])


@dataclass
class OraclePrompt:
    """Token ids of one oracle prompt and where its placeholders sit."""

    input_ids: list[int]
    slots: list[int]  # indices of the placeholder tokens in input_ids


def build_prompt(tokenizer, placeholder_id: int, question: str, layer: int, n_placeholders: int = 1) -> OraclePrompt:
    """`<bos>Layer {layer}: ? ... ? {question}\\nAnswer:` assembled from ids, so no merge can hide a placeholder."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    head = tokenizer.encode(f"Layer {layer}:", add_special_tokens=False)
    tail = tokenizer.encode(f" {question.strip()}\nAnswer:", add_special_tokens=False)
    start = len(bos) + len(head)
    ids = bos + head + [placeholder_id] * n_placeholders + tail
    slots = list(range(start, start + n_placeholders))
    if any(ids[i] != placeholder_id for i in slots) or ids.count(placeholder_id) != n_placeholders:
        raise SteerlabError(
            f"the question {question!r} itself contains the placeholder token; reword it or choose another placeholder"
        )
    return OraclePrompt(ids, slots)


def norm_matched(hidden: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """`h + ||h|| * v / ||v||` row-wise.  hidden [n, hidden], vector [n, hidden] -> [n, hidden]."""
    direction = vector / vector.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return hidden + hidden.norm(dim=-1, keepdim=True) * direction.to(hidden.dtype)


@contextmanager
def inject_vectors(block: nn.Module, slots: torch.Tensor, vectors: torch.Tensor) -> Iterator[None]:
    """While inside, `block`'s output gets `vectors[b]` norm-matched at positions `slots[b, :]`.

    slots: `[batch, n_slots]` long (token indices in each row, after padding);
    vectors: `[batch, hidden]` (may require grad). Only forward passes whose batch size equals
    `slots.shape[0]` and that cover the slots are changed (generation steps after the prompt
    are left alone). The hook is removed in `finally`.
    """
    if slots.ndim != 2 or vectors.ndim != 2 or slots.shape[0] != vectors.shape[0]:
        raise SteerlabError(f"inject_vectors needs slots [batch, n] and vectors [batch, hidden]; got {tuple(slots.shape)} and {tuple(vectors.shape)}")

    def hook(_module, _inputs, output):
        hidden = block_output(output)  # [batch, pos, hidden]
        if hidden.shape[0] != slots.shape[0] or hidden.shape[1] <= int(slots.max()):
            return None
        rows = torch.arange(hidden.shape[0], device=hidden.device).unsqueeze(1).expand_as(slots)  # [batch, n]
        current = hidden[rows, slots]  # [batch, n, hidden]
        expanded = vectors.unsqueeze(1).expand_as(current)  # [batch, n, hidden]
        replaced = hidden.clone()
        replaced[rows, slots] = norm_matched(current, expanded)
        if isinstance(output, tuple):
            return (replaced,) + tuple(output[1:])
        return replaced

    handle = block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def pad_prompts(prompts: Sequence[OraclePrompt], answers: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad `prompt + answer` rows so every answer ends at the last position.

    Returns input_ids `[batch, pos]`, attention_mask `[batch, pos]`, slots `[batch, n]` and
    answer_mask `[batch, pos]` (1 on answer tokens).
    """
    rows = [p.input_ids + list(a) for p, a in zip(prompts, answers)]
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention = torch.zeros(len(rows), length, dtype=torch.long)
    answer_mask = torch.zeros(len(rows), length, dtype=torch.long)
    slots = []
    for i, (row, prompt, answer) in enumerate(zip(rows, prompts, answers)):
        offset = length - len(row)
        input_ids[i, offset:] = torch.tensor(row)
        attention[i, offset:] = 1
        if answer:
            answer_mask[i, length - len(answer):] = 1
        slots.append([offset + s for s in prompt.slots])
    return input_ids, attention, torch.tensor(slots, dtype=torch.long), answer_mask
