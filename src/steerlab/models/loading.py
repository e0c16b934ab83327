"""Loading models: packaged GGUF (converted once to a safetensors cache), local folders, hub ids.

    from steerlab import load_model
    lm = load_model("gemma-3-270m")       # first call converts the GGUF (~45 s), later ~3 s
    lm.blocks[6]                          # decoder block 6; its output is layer 6's residual

Loaded models are memoised per process, so a pipeline that asks for the same model twice
pays for one load.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from steerlab.errors import SteerlabError
from steerlab.models.blocks import decoder_blocks
from steerlab.models.registry import MODELS, get_spec

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer and the facts steerlab records next to every result."""

    name: str  # short name, folder or hub id as the user gave it
    model: nn.Module
    tokenizer: object  # a transformers PreTrainedTokenizerBase
    revision: str  # package versions, hub commit, or "local"
    is_chat: bool
    extras: dict = field(default_factory=dict)

    @property
    def blocks(self) -> nn.ModuleList:
        return decoder_blocks(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        text_config = getattr(config, "text_config", None) or config
        return int(text_config.hidden_size)

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def check_layer(self, layer: int) -> int:
        """Return layer if it exists, else raise an error that states the valid range."""
        if not isinstance(layer, int) or not 0 <= layer < self.n_layers:
            raise SteerlabError(
                f"layer {layer} is out of range for {self.name}: it has layers 0..{self.n_layers - 1} "
                f"({self.n_layers} decoder blocks)"
            )
        return layer

    def chat_prompt(self, user_text: str) -> str:
        """The text a model should continue to answer user_text: chat template for instruct models."""
        if not self.is_chat:
            return user_text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )


_LOADED: dict[tuple[str, str, str], LoadedModel] = {}


def load_model(name: str = "gemma-3-270m", dtype: str = "float32", device: str = "cpu") -> LoadedModel:
    """Load a packaged model by short name, a local folder or .gguf file, or a hub id.

    Memoised per (name, dtype, device). Raises SteerlabError with the fix when the model
    cannot be found.
    """
    key = (name, dtype, device)
    if key in _LOADED:
        return _LOADED[key]
    if dtype not in _DTYPES:
        raise SteerlabError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    torch_dtype = _DTYPES[dtype]
    if name in MODELS:
        loaded = _load_packaged(name, torch_dtype)
    elif Path(name).expanduser().exists():
        loaded = _load_local(Path(name).expanduser(), name, torch_dtype)
    elif "/" in name and not name.endswith(".gguf"):
        loaded = _load_hub(name, torch_dtype)
    else:
        get_spec(name)  # raises the "unknown model" error listing the packaged names
        raise AssertionError("unreachable")
    loaded.model.to(device)
    loaded.model.eval()
    _prepare_tokenizer(loaded.tokenizer)
    _LOADED[key] = loaded
    return loaded


def _prepare_tokenizer(tokenizer) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _from_pretrained(folder: Path, torch_dtype: torch.dtype, gguf_file: str | None = None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    if not gguf_file:
        hf_logging.disable_progress_bar()  # a cached load takes seconds; its bar only clutters output
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, **kwargs)
    finally:
        hf_logging.enable_progress_bar()
    return model, tokenizer


def _load_packaged(name: str, torch_dtype: torch.dtype) -> LoadedModel:
    spec = get_spec(name)
    target = spec.converted_dir()
    if not spec.cached():
        gguf_path = spec.gguf_path()
        convert_gguf(gguf_path, target, extra={"model": name, "revision": spec.revision()})
    model, tokenizer = _from_pretrained(target, torch_dtype)
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, revision=spec.revision(), is_chat=spec.is_chat)


def convert_gguf(gguf_path: Path, target: Path, extra: dict | None = None) -> Path:
    """De-quantize a GGUF file to float32 safetensors in target (atomic: a crash leaves nothing)."""
    started = time.perf_counter()
    print(f"steerlab: converting {gguf_path.name} to safetensors in {target} (once; later loads take seconds)")
    model, tokenizer = _from_pretrained(gguf_path.parent, torch.float32, gguf_file=gguf_path.name)
    # transformers refuses to save a model that still carries GGUF quantizer marks
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    manifest = {"source": str(gguf_path), "converted_seconds": round(time.perf_counter() - started, 1), **(extra or {})}
    (partial / "steerlab-model.json").write_text(json.dumps(manifest, indent=2))
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    return target


def _load_local(path: Path, name: str, torch_dtype: torch.dtype) -> LoadedModel:
    try:
        if path.is_file() and path.suffix == ".gguf":
            model, tokenizer = _from_pretrained(path.parent, torch_dtype, gguf_file=path.name)
            model.hf_quantizer = None
        else:
            model, tokenizer = _from_pretrained(path, torch_dtype)
    except (OSError, ValueError) as error:
        raise SteerlabError(
            f"cannot load a causal LM from {path}: {error}. A folder needs config.json, weights and a tokenizer "
            "(as written by save_pretrained)"
        ) from None
    is_chat = getattr(tokenizer, "chat_template", None) is not None
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, revision="local", is_chat=is_chat)


def _load_hub(name: str, torch_dtype: torch.dtype) -> LoadedModel:
    try:
        model, tokenizer = _from_pretrained(Path(name), torch_dtype)
    except OSError as error:
        raise SteerlabError(
            f"cannot load {name!r} from the Hugging Face hub or its local cache ({error.__class__.__name__}). "
            f"Without hub access use a packaged model ({', '.join(MODELS)}) or a local folder"
        ) from None
    revision = getattr(model.config, "_commit_hash", None) or "unknown"
    is_chat = getattr(tokenizer, "chat_template", None) is not None
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, revision=revision, is_chat=is_chat)


def from_pretrained_objects(name: str, model: nn.Module, tokenizer, is_chat: bool | None = None) -> LoadedModel:
    """Wrap an already-built model and tokenizer (tests, notebooks) as a LoadedModel."""
    _prepare_tokenizer(tokenizer)
    model.eval()
    chat = is_chat if is_chat is not None else getattr(tokenizer, "chat_template", None) is not None
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, revision="in-memory", is_chat=chat)
