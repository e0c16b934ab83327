"""Export a Direction to llama.cpp's control-vector GGUF format.

llama.cpp reads tensors `direction.{il}` (il >= 1 is the decoder block whose output receives
the vector) plus `controlvector.model_hint` and `controlvector.layer_count`. steerlab writes
each layer's unit vector times that layer's mean residual norm, so llama.cpp's
`--control-vector-scaled FILE s` applies steerlab's relative strength s. Block 0 cannot be
addressed by llama.cpp and is skipped; so is the last block when scaling by norm, because its
recorded norm was read after the final norm (export with `scale_by_norm=False` to keep it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from steerlab.directions.direction import Direction
from steerlab.errors import SteerlabError


def export_gguf(direction: Direction, path: str | Path, scale_by_norm: bool = True) -> Path:
    import gguf

    path = Path(path)
    # a norm read after the final norm says nothing about the raw block output llama.cpp adds to
    post_norm = {row["layer"] for row in direction.meta.get("norms") or [] if row.get("after_final_norm")}
    layers = [layer for layer in direction.layers if layer >= 1 and not (scale_by_norm and layer in post_norm)]
    if not layers:
        raise SteerlabError("llama.cpp control vectors cannot address block 0; extract at layers >= 1")
    hint = str(direction.meta.get("model_type") or direction.meta.get("architecture") or direction.model or "unknown")
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    writer = gguf.GGUFWriter(str(partial), "controlvector")
    writer.add_string("controlvector.model_hint", hint)
    writer.add_uint32("controlvector.layer_count", len(layers))
    for layer in layers:
        vector = direction.vector(layer).numpy().astype(np.float32)
        if scale_by_norm:
            norm = direction.mean_norm(layer)
            if norm is None:
                raise SteerlabError(f"layer {layer} has no recorded residual norm; export with scale_by_norm=False")
            vector = vector * np.float32(norm)
        writer.add_tensor(f"direction.{layer}", vector)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_gguf_control_vector(path: str | Path) -> tuple[str, dict[int, np.ndarray]]:
    """(model hint, {block: vector}) from a control-vector GGUF, as llama.cpp would read it."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    hint_field = reader.fields["controlvector.model_hint"]
    hint = bytes(hint_field.parts[hint_field.data[0]]).decode()
    vectors = {}
    for tensor in reader.tensors:
        if tensor.name.startswith("direction."):
            vectors[int(tensor.name.split(".")[1])] = np.array(tensor.data, dtype=np.float32)
    return hint, vectors
