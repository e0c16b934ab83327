"""Finding the decoder blocks of a causal language model.

This is the one place in steerlab that knows where each architecture keeps its stack of
decoder blocks. Everything that reads or writes the residual stream (activations, steering,
arena scoring, the oracle) asks `decoder_blocks(model)`.
"""

from __future__ import annotations

import torch.nn as nn

from steerlab.errors import SteerlabError

# Attribute paths tried in order. Each names the ModuleList whose i-th entry is decoder block i.
_BLOCK_PATHS: tuple[tuple[str, ...], ...] = (
    ("model", "layers"),  # Llama, Mistral, Qwen2, Gemma/Gemma2/Gemma3 (text), OLMo, OLMo2, Phi-3
    ("model", "language_model", "layers"),  # Gemma3ForConditionalGeneration and other multimodal wrappers
    ("language_model", "model", "layers"),
    ("transformer", "h"),  # GPT-2, GPT-J, Bloom, Falcon
    ("gpt_neox", "layers"),  # GPT-NeoX, Pythia
    ("model", "decoder", "layers"),  # OPT
    ("layers",),  # a bare decoder (LlamaModel and friends)
)


def _follow(model: nn.Module, path: tuple[str, ...]) -> nn.Module | None:
    node: object = model
    for attribute in path:
        node = getattr(node, attribute, None)
        if node is None:
            return None
    return node if isinstance(node, nn.Module) else None


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """Return the ModuleList of decoder blocks; block i's output is the residual stream at layer i.

    Raises SteerlabError naming the model class and the paths tried when none fits.
    """
    # PEFT wrappers keep the real model under base_model.model
    inner = getattr(getattr(model, "base_model", None), "model", None)
    candidates = [model] + ([inner] if isinstance(inner, nn.Module) and inner is not model else [])
    for candidate in candidates:
        for path in _BLOCK_PATHS:
            blocks = _follow(candidate, path)
            if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
                return blocks
    tried = ", ".join(".".join(p) for p in _BLOCK_PATHS)
    raise SteerlabError(
        f"cannot find the decoder blocks of {type(model).__name__}: tried {tried}. "
        "Add the attribute path of its ModuleList of blocks to _BLOCK_PATHS in "
        "steerlab/models/blocks.py"
    )


# Attribute paths of the norm applied after the last block (what Hugging Face's hidden_states[-1] includes).
_FINAL_NORM_PATHS: tuple[tuple[str, ...], ...] = (
    ("model", "norm"),
    ("model", "language_model", "norm"),
    ("language_model", "model", "norm"),
    ("transformer", "ln_f"),
    ("gpt_neox", "final_layer_norm"),
    ("model", "decoder", "final_layer_norm"),
    ("norm",),
)


def final_norm(model: nn.Module) -> nn.Module | None:
    """The norm after the last decoder block, or None when the model has none steerlab knows."""
    inner = getattr(getattr(model, "base_model", None), "model", None)
    for candidate in [model] + ([inner] if isinstance(inner, nn.Module) and inner is not model else []):
        for path in _FINAL_NORM_PATHS:
            norm = _follow(candidate, path)
            if norm is not None:
                return norm
    return None
