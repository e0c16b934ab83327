"""Confound directions (length, sentiment, action) and projecting them out of a direction.

A confound direction is the mean difference of activations between the two sides of a
bundled confound set, read on the same model, layers and position as the direction it
cleans. Projection is Gram-Schmidt: orthonormalise the confounds, subtract each component,
renormalise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steerlab.activations import Position, read_residuals
from steerlab.data import load_pairs, load_texts
from steerlab.directions.estimators import get_estimator
from steerlab.errors import SteerlabError, unknown_name
from steerlab.models.loading import LoadedModel


@dataclass(frozen=True)
class ConfoundSet:
    name: str
    dataset: str
    description: str


CONFOUNDS: dict[str, ConfoundSet] = {
    "length": ConfoundSet("length", "length", "long vs short wording of the same neutral content"),
    "sentiment": ConfoundSet("sentiment", "valence", "pleasant vs unpleasant texts on value-neutral topics"),
    "action": ConfoundSet("action", "action", "acting vs staying passive, value-neutral"),
}


def confound_texts(name: str) -> tuple[list[str], list[str]]:
    """(positive side texts, negative side texts) of a confound set."""
    if name not in CONFOUNDS:
        raise unknown_name("confound", name, list(CONFOUNDS))
    dataset = CONFOUNDS[name].dataset
    if name == "sentiment":
        items = load_texts(dataset)
        return [i.text for i in items if i.label == "positive"], [i.text for i in items if i.label == "negative"]
    pairs = load_pairs(dataset)
    return [p.chosen_text() for p in pairs], [p.rejected_text() for p in pairs]


def confound_directions(
    lm: LoadedModel,
    names: list[str] | tuple[str, ...],
    layers: list[int],
    position: Position = "last",
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Unit confound directions per layer: name -> `[n_layers, hidden]` (float64)."""
    result = {}
    for name in names:
        positive, negative = confound_texts(name)
        acts = read_residuals(lm, positive + negative, layers, position, batch_size, progress=progress, description=f"confound {name}")
        acts = acts.double().numpy()  # [n, layers, hidden]
        estimator = get_estimator("mean_diff")
        result[name] = np.stack(
            [estimator.fit(acts[: len(positive), i], acts[len(positive) :, i]) for i in range(len(layers))]
        )
    return result


def project_out(direction: np.ndarray, confounds: list[np.ndarray]) -> np.ndarray:
    """Remove the span of the confound vectors from direction (Gram-Schmidt) and renormalise."""
    basis: list[np.ndarray] = []
    for vector in confounds:
        residual = np.asarray(vector, dtype=np.float64).copy()
        for q in basis:
            residual -= (residual @ q) * q
        norm = np.linalg.norm(residual)
        if norm > 1e-10:
            basis.append(residual / norm)
    cleaned = np.asarray(direction, dtype=np.float64).copy()
    for q in basis:
        cleaned -= (cleaned @ q) * q
    norm = np.linalg.norm(cleaned)
    if norm < 1e-8:
        raise SteerlabError("the direction lies inside the span of the confounds; nothing is left after projecting them out")
    return cleaned / norm
