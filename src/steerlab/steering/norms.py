"""Typical residual norms per layer, and steering strengths relative to them.

    from steerlab.steering import residual_norms, relative_coef
    stats = residual_norms(lm)                  # {layer: NormStats(mean, median, massive_dims)}
    coef = relative_coef(lm, 6, d, strength=0.5)  # = 0.5 * mean_norm(6) / ||d||

Norms are measured once per model on the bundled `neutral-probes` texts, over every real
token except the first of each text (attention-sink tokens carry huge norms that are not
typical), and cached in memory and under `cache_dir()/norms` keyed by model name, revision
and the probe texts' hash. "Massive" dimensions are those whose mean magnitude over tokens is
more than 100x the median dimension's (Gemma 3 has them; its norms grow into the thousands).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from steerlab.activations import capture_blocks, run_until_stop
from steerlab.data import load_texts, texts_hash
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.models.registry import cache_dir

NORMS_VERSION = 1
PROBE_SET = "neutral-probes"
MASSIVE_RATIO = 100.0
MAX_MASSIVE_LISTED = 10


@dataclass(frozen=True)
class NormStats:
    """Residual norm statistics of one layer over the neutral probe tokens."""

    layer: int
    mean: float  # mean L2 norm of a token's residual vector
    median: float  # median L2 norm
    n_tokens: int
    massive_dims: tuple[tuple[int, float], ...]  # (dimension, mean |activation|), largest first
    median_dim_magnitude: float  # median over dimensions of the mean |activation|


_MEMORY: dict[tuple, dict[int, NormStats]] = {}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "model"


def _cache_path(lm: LoadedModel, probes_hash: str) -> Path:
    key = hashlib.sha256(f"{lm.name}\n{lm.revision}\n{probes_hash}".encode()).hexdigest()[:16]
    return cache_dir() / "norms" / f"{_slug(lm.name)}-{key}.json"


def _memory_key(lm: LoadedModel, probes_hash: str) -> tuple:
    # models built in memory share a name and revision; tell them apart by identity
    identity = id(lm.model) if lm.revision == "in-memory" else None
    return (lm.name, lm.revision, probes_hash, identity)


def _measure(lm: LoadedModel, texts: Sequence[str]) -> dict[int, NormStats]:
    layers = list(range(lm.n_layers))
    tokenizer = lm.tokenizer
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    norms: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    magnitudes: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    try:
        with torch.inference_mode(), capture_blocks(lm, layers) as captured:
            for start in range(0, len(texts), 16):
                encoded = tokenizer(list(texts[start : start + 16]), return_tensors="pt", padding=True)
                mask = encoded["attention_mask"].to(lm.device)  # [batch, pos]
                captured.clear()
                run_until_stop(lm, encoded["input_ids"].to(lm.device), mask)
                keep = mask.bool().clone()
                first = keep.float().argmax(dim=1)  # [batch] first real token (right padding: 0)
                keep[torch.arange(keep.shape[0]), first] = False
                for layer in layers:
                    hidden = captured[layer].float()[keep]  # [tokens, hidden]
                    norms[layer].append(hidden.norm(dim=-1).cpu())
                    magnitudes[layer].append(hidden.abs().cpu())
    finally:
        tokenizer.padding_side = previous_side
    stats = {}
    for layer in layers:
        token_norms = torch.cat(norms[layer])  # [tokens]
        if token_norms.numel() == 0:
            raise SteerlabError("the neutral probe texts produced no tokens to measure; check the neutral-probes data set")
        per_dim = torch.cat(magnitudes[layer]).mean(dim=0)  # [hidden]
        median_dim = float(per_dim.median())
        order = torch.argsort(per_dim, descending=True)
        massive = tuple(
            (int(d), round(float(per_dim[d]), 4))
            for d in order[:MAX_MASSIVE_LISTED].tolist()
            if float(per_dim[d]) > MASSIVE_RATIO * max(median_dim, 1e-12)
        )
        stats[layer] = NormStats(
            layer=layer,
            mean=float(token_norms.mean()),
            median=float(token_norms.median()),
            n_tokens=int(token_norms.numel()),
            massive_dims=massive,
            median_dim_magnitude=median_dim,
        )
    return stats


def _read_disk(path: Path) -> dict[int, NormStats] | None:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a missing or unreadable cache is simply measured again
    if payload.get("version") != NORMS_VERSION:
        return None
    stats = {}
    for row in payload.get("layers", []):
        row["massive_dims"] = tuple((int(d), float(v)) for d, v in row["massive_dims"])
        stats[int(row["layer"])] = NormStats(**row)
    return stats


def _write_disk(path: Path, lm: LoadedModel, probes_hash: str, stats: dict[int, NormStats]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": NORMS_VERSION,
        "model": lm.name,
        "revision": lm.revision,
        "probe_set": PROBE_SET,
        "probes_hash": probes_hash,
        "measured_on": "every real token of each probe text except the first",
        "layers": [asdict(s) for s in stats.values()],
    }
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    partial.write_text(json.dumps(payload, indent=1))
    os.replace(partial, path)


def residual_norms(lm: LoadedModel, layers: Sequence[int] | None = None) -> dict[int, NormStats]:
    """NormStats for the given layers (default all), measured once per model and cached."""
    texts = [item.text for item in load_texts(PROBE_SET)]
    probes_hash = texts_hash(texts)
    key = _memory_key(lm, probes_hash)
    stats = _MEMORY.get(key)
    if stats is None:
        disk = lm.revision != "in-memory"
        path = _cache_path(lm, probes_hash)
        stats = _read_disk(path) if disk else None
        if stats is None or len(stats) != lm.n_layers:
            stats = _measure(lm, texts)
            if disk:
                _write_disk(path, lm, probes_hash, stats)
        _MEMORY[key] = stats
    wanted = range(lm.n_layers) if layers is None else [lm.check_layer(int(layer)) for layer in layers]
    return {layer: stats[layer] for layer in wanted}


def mean_norm(lm: LoadedModel, layer: int) -> float:
    return residual_norms(lm, [layer])[layer].mean


def relative_coef(lm: LoadedModel, layer: int, vector: torch.Tensor, strength: float) -> float:
    """The absolute coefficient for a strength relative to layer's typical residual norm."""
    norm = float(vector.float().norm())
    if norm == 0.0:
        raise SteerlabError(f"the steering vector for layer {layer} is all zeros; it has no direction to steer along")
    return float(strength) * mean_norm(lm, layer) / norm


def strength_of(lm: LoadedModel, layer: int, vector: torch.Tensor, coef: float) -> float:
    """The inverse of relative_coef: which strength an absolute coefficient amounts to."""
    return float(coef) * float(vector.float().norm()) / mean_norm(lm, layer)
