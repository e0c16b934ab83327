"""Extracting a direction from contrastive pairs at many layers in one pass.

    from steerlab import load_model, load_pairs, extract
    lm = load_model("gemma-3-270m")
    d = extract(lm, load_pairs("human-values"), method="logistic", layers="all", remove=("length", "sentiment"))
    d.save("hv.safetensors")

Every text is read once (one batched pass per batch, stopped after the deepest layer). For
each layer the estimator is fitted twice: on a seeded training split to measure held-out
separation (pairwise accuracy: chosen projects above its rejected; AUROC over all held-out
texts), and on all pairs for the saved vector. Confounds are projected out of both fits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from steerlab import __version__
from steerlab.activations import LAYER_CONVENTION, Position, read_residuals
from steerlab.data import ContrastPair, pairs_hash
from steerlab.directions.confounds import CONFOUNDS, confound_directions, project_out
from steerlab.directions.direction import Direction
from steerlab.directions.estimators import get_estimator
from steerlab.errors import SteerlabError, unknown_name
from steerlab.layerspec import parse_layers
from steerlab.models.loading import LoadedModel


@dataclass(frozen=True)
class Separation:
    """Held-out separation of one layer's direction."""

    layer: int
    accuracy: float  # share of held-out pairs whose chosen side projects above the rejected side
    auroc: float
    n_test: int


def held_out_split(n_pairs: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of a seeded split of the pairs."""
    if not 0 <= holdout < 1:
        raise SteerlabError(f"holdout must be in [0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(n_pairs)
    n_test = int(round(holdout * n_pairs))
    if holdout > 0 and n_pairs - n_test < 2:
        raise SteerlabError(f"{n_pairs} pairs are too few to hold out {holdout:.0%}; add pairs or pass holdout=0")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def separation(direction: np.ndarray, chosen: np.ndarray, rejected: np.ndarray) -> tuple[float, float]:
    """(pairwise accuracy, AUROC) of a direction on paired activations `[n, hidden]`."""
    from sklearn.metrics import roc_auc_score

    chosen_scores, rejected_scores = chosen @ direction, rejected @ direction
    accuracy = float(np.mean(chosen_scores > rejected_scores))
    labels = np.concatenate([np.ones(len(chosen)), np.zeros(len(rejected))])
    auroc = float(roc_auc_score(labels, np.concatenate([chosen_scores, rejected_scores])))
    return accuracy, auroc


def extract(
    lm: LoadedModel,
    pairs: list[ContrastPair],
    method: str = "logistic",
    layers: str | list[int] = "all",
    remove: tuple[str, ...] | list[str] = (),
    position: Position = "last",
    holdout: float = 0.2,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    data_name: str = "",
) -> Direction:
    """Fit one unit direction per layer from pairs; returns a Direction with full metadata."""
    estimator = get_estimator(method)
    for name in remove:
        if name not in CONFOUNDS:
            raise unknown_name("confound", name, list(CONFOUNDS))
    if len(pairs) < 4:
        raise SteerlabError(f"got {len(pairs)} pairs; extraction needs at least 4 (100+ recommended)")
    layer_list = parse_layers(layers, lm.n_layers)
    started = time.perf_counter()

    texts = [p.chosen_text() for p in pairs] + [p.rejected_text() for p in pairs]
    acts = read_residuals(lm, texts, layer_list, position, batch_size, progress=progress, description="reading pairs")
    acts64 = acts.double().numpy()  # [2n, layers, hidden]
    n = len(pairs)
    chosen_all, rejected_all = acts64[:n], acts64[n:]
    confounds = confound_directions(lm, list(remove), layer_list, position, batch_size, progress) if remove else {}

    train, test = held_out_split(n, holdout, seed)
    vectors, held_out, norms = [], [], []
    for column, layer in enumerate(layer_list):
        chosen, rejected = chosen_all[:, column], rejected_all[:, column]  # [n, hidden]
        layer_confounds = [confounds[name][column] for name in remove]

        def fit(rows: np.ndarray) -> np.ndarray:
            vector = estimator.fit(chosen[rows], rejected[rows], seed)
            return project_out(vector, layer_confounds) if layer_confounds else vector

        if len(test):
            accuracy, auroc = separation(fit(train), chosen[test], rejected[test])
            held_out.append({"layer": layer, "accuracy": accuracy, "auroc": auroc, "n_test": int(len(test))})
        vectors.append(fit(np.arange(n)))
        layer_norms = np.linalg.norm(acts64[:, column], axis=1)
        norms.append({
            "layer": layer, "mean": float(layer_norms.mean()), "median": float(np.median(layer_norms)),
            "after_final_norm": layer == lm.n_layers - 1,  # the last layer is read after the final norm
        })

    meta = {
        "model": lm.name,
        "model_revision": lm.revision,
        "architecture": lm.architecture,
        "model_type": getattr(lm.model.config, "model_type", ""),
        "n_model_layers": lm.n_layers,
        "layer_convention": LAYER_CONVENTION,
        "position": position,
        "text_format": "prompt + ' ' + completion",
        "method": method,
        "confounds_removed": list(remove),
        "confound_method": "mean_diff of bundled confound sets, Gram-Schmidt projection" if remove else "",
        "held_out": held_out,
        "holdout_fraction": holdout,
        "seed": seed,
        "norms": norms,
        "n_pairs": n,
        "data": data_name,
        "data_hash": pairs_hash(pairs),
        "steerlab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return Direction(torch.tensor(np.stack(vectors), dtype=torch.float32), layer_list, meta)
