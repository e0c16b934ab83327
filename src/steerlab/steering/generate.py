"""Steered greedy generation: batched, left-padded, KV-cached, with shared or per-row configs.

    from steerlab.steering import SteeringSpec, generate
    texts = generate(lm, ["Tell me about honesty."], specs=[SteeringSpec(6, d, 8.0)], max_new_tokens=32)
    # per-row: row i gets its own configs (e.g. K candidates of a search in one pass)
    texts = generate(lm, [q] * 3, per_row=[[SteeringSpec(4, d, c)] for c in (0.0, 4.0, 8.0)])

Instruct models get their chat template (chat=None picks it from the model); base models see
the text as is. Decoding is greedy, so a row's output depends only on its prompt and configs.
"""

from __future__ import annotations

from typing import Sequence

import torch

from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.steering.hooks import SteeringSpec, steer


def format_prompts(lm: LoadedModel, prompts: Sequence[str], chat: bool | None) -> tuple[list[str], bool]:
    """The texts the model continues, and whether they came from a chat template."""
    use_chat = lm.is_chat if chat is None else bool(chat)
    if use_chat and not lm.is_chat:
        raise SteerlabError(f"{lm.name} has no chat template; pass chat=False (base models continue the text as is)")
    return ([lm.chat_prompt(p) for p in prompts] if use_chat else list(prompts)), use_chat


def _eos_ids(lm: LoadedModel) -> list[int]:
    eos = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = lm.tokenizer.eos_token_id
    ids = eos if isinstance(eos, (list, tuple)) else [eos]
    return [int(i) for i in ids if i is not None]


def generate_ids(
    lm: LoadedModel,
    prompts: Sequence[str],
    specs: Sequence[SteeringSpec] | None = None,
    per_row: Sequence[Sequence[SteeringSpec]] | None = None,
    max_new_tokens: int = 64,
    chat: bool | None = None,
    batch_size: int | None = None,
) -> list[list[int]]:
    """Greedy continuations as token ids (up to and including an end-of-sequence token)."""
    from transformers import GenerationConfig

    if per_row is not None and len(per_row) != len(prompts):
        raise SteerlabError(f"per_row has {len(per_row)} entries for {len(prompts)} prompts; pass one spec list per prompt")
    if max_new_tokens < 1:
        raise SteerlabError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if not prompts:
        return []
    texts, used_chat = format_prompts(lm, prompts, chat)
    tokenizer = lm.tokenizer
    eos = _eos_ids(lm)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )
    size = batch_size or len(texts)
    results: list[list[int]] = []
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=not used_chat)
            input_ids = encoded["input_ids"].to(lm.device)  # [batch, prompt_len]
            mask = encoded["attention_mask"].to(lm.device)  # [batch, prompt_len]
            rows = None if per_row is None else [list(r) for r in per_row[start : start + size]]
            with torch.inference_mode(), steer(lm, specs, per_row=rows):
                output = lm.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
            new_tokens = output[:, input_ids.shape[1] :]  # [batch, <= max_new_tokens]
            for row in new_tokens.tolist():
                kept = []
                for token in row:
                    kept.append(token)
                    if token in eos:
                        break
                results.append(kept)
    finally:
        tokenizer.padding_side = previous_side
    return results


def generate(
    lm: LoadedModel,
    prompts: list[str],
    specs: list[SteeringSpec] | None = None,
    per_row: list[list[SteeringSpec]] | None = None,
    max_new_tokens: int = 64,
    chat: bool | None = None,
    batch_size: int | None = None,
) -> list[str]:
    """Greedy continuations of `prompts` (text only, special tokens dropped), one per prompt."""
    ids = generate_ids(lm, prompts, specs, per_row, max_new_tokens, chat, batch_size)
    return [lm.tokenizer.decode(row, skip_special_tokens=True) for row in ids]
