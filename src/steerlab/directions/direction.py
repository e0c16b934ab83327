"""The Direction type: unit vectors per layer plus the metadata that says where they came from.

File format (version 1): a `.safetensors` file with one tensor `directions`
`[n_layers_saved, hidden]` (float32, unit rows) and one metadata key `steerlab` holding a JSON
object: `format_version`, `model`, `model_revision`, `hidden_size`, `layers`,
`layer_convention`, `position`, `method`, `confounds_removed`, `held_out` (per layer),
`norms` (per layer), `data`, `data_hash`, `seed`, `steerlab_version`, `created`.

    d = Direction.load("hv.safetensors")
    d.vector(6)          # [hidden] unit vector for layer 6
    (d - other).normalized()
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from steerlab.errors import SteerlabError

FORMAT_VERSION = 1
METADATA_KEY = "steerlab"


@dataclass
class Direction:
    """Unit direction(s) in a model's residual stream, one row per layer in `layers`."""

    vectors: torch.Tensor  # [n_layers_saved, hidden] float32
    layers: list[int]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim == 1:
            self.vectors = self.vectors.unsqueeze(0)
        self.vectors = self.vectors.detach().to(torch.float32).cpu().contiguous()
        self.layers = [int(layer) for layer in self.layers]
        if self.vectors.shape[0] != len(self.layers):
            raise SteerlabError(f"Direction has {self.vectors.shape[0]} vectors but {len(self.layers)} layers")
        if len(set(self.layers)) != len(self.layers):
            raise SteerlabError(f"Direction layers repeat: {self.layers}")

    @property
    def hidden_size(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))

    def vector(self, layer: int) -> torch.Tensor:
        """The `[hidden]` vector for one layer; the error lists the layers this file holds."""
        if layer not in self.layers:
            raise SteerlabError(f"this direction has no vector for layer {layer}; it holds layers {_ranges(self.layers)}")
        return self.vectors[self.layers.index(layer)]

    def held_out(self, layer: int) -> dict | None:
        for row in self.meta.get("held_out") or []:
            if row.get("layer") == layer:
                return row
        return None

    def mean_norm(self, layer: int) -> float | None:
        """Mean residual norm at layer measured on the extraction texts, if recorded."""
        for row in self.meta.get("norms") or []:
            if row.get("layer") == layer:
                return float(row["mean"])
        return None

    def default_layer(self) -> int:
        """The layer recorded as default, else the one at 40% depth among those held."""
        chosen = self.meta.get("default_layer")
        if chosen in self.layers:
            return int(chosen)
        n_layers = int(self.meta.get("n_model_layers") or (max(self.layers) + 1))
        target = round(0.4 * (n_layers - 1))
        return min(self.layers, key=lambda layer: (abs(layer - target), layer))

    def select(self, layers: list[int]) -> "Direction":
        rows = torch.stack([self.vector(layer) for layer in layers])
        meta = dict(self.meta)
        meta["held_out"] = [r for r in meta.get("held_out") or [] if r.get("layer") in layers]
        meta["norms"] = [r for r in meta.get("norms") or [] if r.get("layer") in layers]
        return Direction(rows, list(layers), meta)

    def normalized(self) -> "Direction":
        norms = self.vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return Direction(self.vectors / norms, self.layers, dict(self.meta))

    # arithmetic works row-wise on directions over the same layers; results are not renormalised
    def _check_same(self, other: "Direction") -> None:
        if self.layers != other.layers or self.hidden_size != other.hidden_size:
            raise SteerlabError(
                f"cannot combine directions over layers {self.layers} (hidden {self.hidden_size}) and "
                f"{other.layers} (hidden {other.hidden_size}); select() the same layers first"
            )

    def __add__(self, other: "Direction") -> "Direction":
        self._check_same(other)
        return Direction(self.vectors + other.vectors, self.layers, _derived(self.meta, "sum"))

    def __sub__(self, other: "Direction") -> "Direction":
        self._check_same(other)
        return Direction(self.vectors - other.vectors, self.layers, _derived(self.meta, "difference"))

    def __neg__(self) -> "Direction":
        return Direction(-self.vectors, self.layers, _derived(self.meta, "negated"))

    def __mul__(self, scalar: float) -> "Direction":
        return Direction(self.vectors * float(scalar), self.layers, _derived(self.meta, f"scaled by {scalar}"))

    __rmul__ = __mul__

    def save(self, path: str | Path) -> Path:
        """Write the file atomically (a temporary file renamed into place)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta["format_version"] = FORMAT_VERSION
        meta["layers"] = list(self.layers)
        meta["hidden_size"] = self.hidden_size
        partial = path.with_name(path.name + f".partial-{os.getpid()}")
        try:
            save_file({"directions": self.vectors}, str(partial), metadata={METADATA_KEY: json.dumps(meta)})
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Direction":
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.exists():
            raise SteerlabError(f"direction file not found: {path}; create one with `steerlab extract ... --out {path}`")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                if "directions" not in handle.keys():
                    raise SteerlabError(f"{path} has no 'directions' tensor; it is not a steerlab direction file")
                vectors = handle.get_tensor("directions")
        except SafetensorError as error:
            raise SteerlabError(f"{path} is not a readable .safetensors file ({error})") from None
        if METADATA_KEY not in metadata:
            raise SteerlabError(f"{path} has no '{METADATA_KEY}' metadata; it is not a steerlab direction file")
        meta = json.loads(metadata[METADATA_KEY])
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise SteerlabError(f"{path} has format_version {version}; this steerlab reads version {FORMAT_VERSION}")
        return cls(vectors, meta["layers"], meta)


def _derived(meta: dict, operation: str) -> dict:
    derived = dict(meta)
    derived["derived"] = (meta.get("derived", "") + "; " if meta.get("derived") else "") + operation
    return derived


def _ranges(layers: list[int]) -> str:
    if not layers:
        return "(none)"
    ordered = sorted(layers)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]}..{ordered[-1]}"
    return ",".join(str(layer) for layer in ordered)
