"""What every study shares: where its files go, the inputs it records, atomic JSON and PNG writes.

A study of direction `path/to/hv.safetensors` writes into `path/to/hv.studies/` by default:
`<study>.json` (inputs + results) and `<study>_*.png`. `steerlab report` gathers that folder.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np

from steerlab import __version__
from steerlab.directions import Direction


def default_studies_dir(direction_path: str | Path) -> Path:
    path = Path(direction_path)
    return path.with_name(path.stem + ".studies")


@dataclass(frozen=True)
class StudyInputs:
    """The facts a study's numbers depend on; stored at the top of its JSON."""

    study: str
    model: str
    model_revision: str
    layer: int | None
    direction_file: str
    direction_method: str
    data: str
    data_hash: str
    seed: int
    steerlab_version: str = __version__
    created: str = ""

    @classmethod
    def of(cls, study: str, direction: Direction, direction_file: str | Path, layer: int | None, data: str, data_hash: str, seed: int, model: str = "", model_revision: str = "") -> "StudyInputs":
        return cls(
            study=study,
            model=model or direction.model,
            model_revision=model_revision or str(direction.meta.get("model_revision", "")),
            layer=layer,
            direction_file=str(direction_file),
            direction_method=str(direction.meta.get("method", "")),
            data=data,
            data_hash=data_hash,
            seed=seed,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )


def _plain(value):
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(path: str | Path, payload) -> Path:
    """Write JSON atomically (temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    partial.write_text(json.dumps(_plain(payload), indent=2))
    os.replace(partial, path)
    return path


def save_figure(figure, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + f".partial-{os.getpid()}.png")
    figure.savefig(partial, dpi=110, bbox_inches="tight")
    plt.close(figure)
    os.replace(partial, path)
    return path


def new_figure(width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1, sharex: bool = False):
    """(figure, axes) on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), sharex=sharex, squeeze=nrows * ncols == 1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
