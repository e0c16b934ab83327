"""Reading the residual stream: one batched, padding-aware pass per batch, stopped early.

    from steerlab.activations import read_residuals
    acts = read_residuals(lm, ["The cat sat", "Hello"], layers=[4, 8])   # [2, 2, hidden]

"Layer L" is the output of decoder block L (0-based), `hidden_states[L + 1]` in Hugging Face
terms; for the last block that includes the final norm, exactly as `hidden_states[-1]` does. Hooks on the requested blocks copy the rows they need; a hook on the deepest requested
block stops the forward pass there, so no later block (and no unembedding) runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence, Union

import torch
from tqdm.auto import tqdm

from steerlab.errors import SteerlabError
from steerlab.models.blocks import final_norm
from steerlab.models.loading import LoadedModel

Position = Union[str, int]  # "last" | "mean" | token index among the real tokens (negative counts from the end)

LAYER_CONVENTION = (
    "output of decoder block L (0-based) = hf hidden_states[L+1]; for the last block that includes "
    "the model's final norm, as hf's hidden_states[-1] does"
)


class _StopForward(Exception):
    """Raised by the hook on the deepest block to end the forward pass early."""


def block_output(output) -> torch.Tensor:
    """The hidden-state tensor of a decoder block's output (blocks return a tensor or a tuple)."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def capture_blocks(lm: LoadedModel, layers: Sequence[int], stop_after: bool = True) -> Iterator[dict[int, torch.Tensor]]:
    """Within the block, every forward pass stores block L's raw output in the yielded dict.

    This is where steering writes; `read_residuals` reads the last layer after the final norm.

    With stop_after, the pass ends after the deepest layer (catch it with `run_until_stop`).
    Hooks are removed in `finally`, so the model is unchanged after an exception.
    """
    blocks = lm.blocks
    captured: dict[int, torch.Tensor] = {}
    deepest = max(layers)
    handles = []

    def make_hook(layer: int):
        def hook(_module, _inputs, output):
            captured[layer] = block_output(output)  # [batch, pos, hidden], the raw block output
            if stop_after and layer == deepest:
                raise _StopForward

        return hook

    try:
        for layer in sorted(set(layers)):
            handles.append(blocks[layer].register_forward_hook(make_hook(layer)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def run_until_stop(lm: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
    """Run the model forward; a `_StopForward` from `capture_blocks` ends it quietly."""
    try:
        lm.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _StopForward:
        pass


def token_positions(attention_mask: torch.Tensor, position: Position) -> torch.Tensor:
    """Index of the chosen token in each row, for left or right padding.  # [batch]"""
    batch, length = attention_mask.shape
    arange = torch.arange(length, device=attention_mask.device).expand(batch, length)
    real = attention_mask.bool()
    last = torch.where(real, arange, torch.full_like(arange, -1)).max(dim=1).values  # [batch]
    first = torch.where(real, arange, torch.full_like(arange, length)).min(dim=1).values  # [batch]
    if position == "last":
        return last
    if isinstance(position, int) and not isinstance(position, bool):
        index = first + position if position >= 0 else last + 1 + position
        counts = real.sum(dim=1)
        if (index < first).any() or (index > last).any():
            shortest = int(counts.min())
            raise SteerlabError(
                f"position {position} is outside a text of {shortest} tokens; use 'last', 'mean' or an index "
                f"between {-shortest} and {shortest - 1}"
            )
        return index
    raise SteerlabError(f"unknown position {position!r}; use 'last', 'mean' or a token index such as 0 or -2")


def validate_layers(lm: LoadedModel, layers: Sequence[int]) -> list[int]:
    if len(layers) == 0:
        raise SteerlabError("no layers requested; pass at least one layer")
    return [lm.check_layer(int(layer)) for layer in layers]


def read_residuals(
    lm: LoadedModel,
    texts: Sequence[str],
    layers: Sequence[int],
    position: Position = "last",
    batch_size: int = 16,
    padding_side: str | None = None,
    progress: bool = True,
    description: str = "reading activations",
) -> torch.Tensor:
    """Residual stream of each text at one position, for the given layers.

    Returns float32 `[n_texts, n_layers, hidden]`, rows in the order of `texts`, layers in the
    order given. Texts are sorted by length into batches to waste little compute on padding.
    """
    layers = validate_layers(lm, layers)
    if len(texts) == 0:
        return torch.zeros(0, len(layers), lm.hidden_size)
    if position != "mean":
        token_positions(torch.ones(1, 1, dtype=torch.long), position if position == "last" else 0)  # validates the kind
    tokenizer = lm.tokenizer
    side = padding_side or tokenizer.padding_side
    if side not in ("left", "right"):
        raise SteerlabError(f"padding_side must be 'left' or 'right', not {side!r}")
    lengths = [len(tokenizer(text, add_special_tokens=True)["input_ids"]) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    result = torch.empty(len(texts), len(layers), lm.hidden_size, dtype=torch.float32)  # [n, layers, hidden]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    last_block = lm.n_layers - 1
    norm = final_norm(lm.model) if last_block in layers else None
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        with torch.inference_mode(), capture_blocks(lm, layers) as captured:
            for batch in tqdm(batches, desc=description, disable=not progress or len(batches) < 2, leave=False):
                encoded = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True)
                input_ids = encoded["input_ids"].to(lm.device)
                mask = encoded["attention_mask"].to(lm.device)  # [batch, pos]
                captured.clear()
                run_until_stop(lm, input_ids, mask)
                for column, layer in enumerate(layers):
                    hidden = captured[layer]  # [batch, pos, hidden]
                    if layer == last_block and norm is not None:
                        hidden = norm(hidden)  # read the last layer as hf's hidden_states[-1]: after the final norm
                    hidden = hidden.float()
                    if position == "mean":
                        weights = mask.unsqueeze(-1).float()
                        rows = (hidden * weights).sum(1) / weights.sum(1)
                    else:
                        index = token_positions(mask, position)
                        rows = hidden[torch.arange(len(batch)), index]
                    result[batch, column] = rows.cpu()
    finally:
        tokenizer.padding_side = previous_side
    return result
