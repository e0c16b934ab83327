"""Models: the registry of packaged models, loading with a safetensors cache, decoder blocks."""

from steerlab.models.blocks import decoder_blocks
from steerlab.models.loading import LoadedModel, convert_gguf, from_pretrained_objects, load_model
from steerlab.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, cache_dir, get_spec

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LoadedModel",
    "ModelSpec",
    "cache_dir",
    "convert_gguf",
    "decoder_blocks",
    "from_pretrained_objects",
    "get_spec",
    "load_model",
]
