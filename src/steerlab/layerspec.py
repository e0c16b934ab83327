"""Parsing layer selections: `all`, `30%-60%`, `4,6,8`, `4-8`, `-1` (last), or a mix."""

from __future__ import annotations

import math

from steerlab.errors import SteerlabError


def parse_layers(spec: str | int | list[int], n_layers: int) -> list[int]:
    """Resolve a layer selection to sorted unique block indices in 0..n_layers-1.

    Percent ranges use depth fractions of the last block: `30%-60%` of an 18-layer model is
    layers 6..10 (ceil(0.3*17) .. floor(0.6*17)).
    """
    if isinstance(spec, int):
        items: list[str] = [str(spec)]
    elif isinstance(spec, list):
        items = [str(layer) for layer in spec]
    else:
        items = [part.strip() for part in str(spec).split(",") if part.strip()]
    if not items:
        raise SteerlabError("empty layer selection; use all, 30%-60%, 4,6,8 or 4-8")
    layers: set[int] = set()
    for item in items:
        layers.update(_parse_item(item, n_layers))
    if not layers:
        raise SteerlabError(f"layer selection {spec!r} selects no layer of a {n_layers}-layer model")
    return sorted(layers)


def _parse_item(item: str, n_layers: int) -> list[int]:
    last = n_layers - 1
    if item == "all":
        return list(range(n_layers))
    if "%" in item:
        bounds = item.split("-")
        try:
            fractions = [float(b.strip().rstrip("%")) / 100 for b in bounds]
        except ValueError:
            raise SteerlabError(f"cannot read layer range {item!r}; write it like 30%-60%") from None
        if len(fractions) == 1:
            return [_check(round(fractions[0] * last), item, n_layers)]
        low, high = fractions
        if not 0 <= low <= high <= 1:
            raise SteerlabError(f"layer range {item!r} must run from a lower to a higher percentage within 0%-100%")
        start, stop = math.ceil(low * last - 1e-9), math.floor(high * last + 1e-9)
        return list(range(start, max(start, stop) + 1))
    if item.count("-") == 1 and not item.startswith("-"):
        start_text, stop_text = item.split("-")
        start, stop = _integer(start_text, item), _integer(stop_text, item)
        if start > stop:
            raise SteerlabError(f"layer range {item!r} runs backwards; write the lower layer first")
        return [_check(layer, item, n_layers) for layer in range(start, stop + 1)]
    layer = _integer(item, item)
    if layer < 0:
        layer += n_layers
    return [_check(layer, item, n_layers)]


def _integer(text: str, item: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise SteerlabError(f"cannot read layer {item!r}; use all, 30%-60%, 4,6,8 or 4-8") from None


def _check(layer: int, item: str, n_layers: int) -> int:
    if not 0 <= layer < n_layers:
        raise SteerlabError(f"layer {item} is out of range: the model has layers 0..{n_layers - 1}")
    return layer
