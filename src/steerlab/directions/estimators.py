"""Estimators: ways to turn activations of chosen and rejected texts into one direction.

Each estimator takes `chosen [n, hidden]` and `rejected [m, hidden]` (float64 numpy; paired
row by row when n == m) and a seed, and returns a unit vector `[hidden]` oriented so chosen
texts project above rejected ones on average. Look estimators up by name:

    get_estimator("lda").fit(chosen, rejected, seed=0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from steerlab.errors import SteerlabError, unknown_name

FitFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Estimator:
    name: str
    description: str
    fit_raw: FitFn  # may return any scale or sign; `fit` normalises and orients
    needs_pairs: bool = False

    def fit(self, chosen: np.ndarray, rejected: np.ndarray, seed: int = 0) -> np.ndarray:
        """Unit direction `[hidden]`, oriented so mean(chosen @ d) > mean(rejected @ d)."""
        chosen = np.asarray(chosen, dtype=np.float64)
        rejected = np.asarray(rejected, dtype=np.float64)
        if chosen.ndim != 2 or rejected.ndim != 2 or chosen.shape[1] != rejected.shape[1]:
            raise SteerlabError(f"estimator {self.name}: expected two [n, hidden] arrays, got {chosen.shape} and {rejected.shape}")
        if len(chosen) < 2 or len(rejected) < 2:
            raise SteerlabError(f"estimator {self.name}: needs at least 2 chosen and 2 rejected texts")
        if self.needs_pairs and len(chosen) != len(rejected):
            raise SteerlabError(f"estimator {self.name} needs paired data: got {len(chosen)} chosen and {len(rejected)} rejected rows")
        direction = self.fit_raw(chosen, rejected, seed)
        norm = float(np.linalg.norm(direction))
        if not np.isfinite(norm) or norm == 0.0:
            raise SteerlabError(f"estimator {self.name} produced a zero or non-finite direction; are chosen and rejected identical?")
        direction = direction / norm
        if chosen.mean(0) @ direction < rejected.mean(0) @ direction:
            direction = -direction
        return direction


ESTIMATORS: dict[str, Estimator] = {}


def register(name: str, description: str, needs_pairs: bool = False) -> Callable[[FitFn], FitFn]:
    def decorate(fit: FitFn) -> FitFn:
        ESTIMATORS[name] = Estimator(name=name, description=description, fit_raw=fit, needs_pairs=needs_pairs)
        return fit

    return decorate


def get_estimator(name: str) -> Estimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise unknown_name("method", name, list(ESTIMATORS)) from None


@register("mean_diff", "difference of the class means (CAA)")
def _mean_diff(chosen: np.ndarray, rejected: np.ndarray, seed: int) -> np.ndarray:
    return chosen.mean(0) - rejected.mean(0)


def _floored_scale(features: np.ndarray) -> np.ndarray:
    """Per-feature std floored at the median std: standardises without inflating dead dimensions."""
    std = features.std(0)
    return np.maximum(std, np.median(std) + 1e-12)


@register("logistic", "L2-regularised logistic-regression probe (C=1 on standardised features)")
def _logistic(chosen: np.ndarray, rejected: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    features = np.concatenate([chosen, rejected])
    labels = np.concatenate([np.ones(len(chosen)), np.zeros(len(rejected))])
    center = features.mean(0)
    scale = _floored_scale(features)
    probe = LogisticRegression(C=1.0, max_iter=5000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on perfectly separable data
        probe.fit((features - center) / scale, labels)
    # the decision function is w . (x - c) / s, so the raw-space normal is w / s
    return probe.coef_[0] / scale


@register("lda", "linear discriminant with Ledoit-Wolf shrinkage of the within-class covariance")
def _lda(chosen: np.ndarray, rejected: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    features = np.concatenate([chosen, rejected])
    labels = np.concatenate([np.ones(len(chosen)), np.zeros(len(rejected))])
    scale = _floored_scale(features)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    lda.fit(features / scale, labels)
    return lda.coef_[0] / scale


@register("pca", "first principal axis of the paired differences (uncentred), sign-aligned", needs_pairs=True)
def _pca(chosen: np.ndarray, rejected: np.ndarray, seed: int) -> np.ndarray:
    differences = chosen - rejected  # [n, hidden]
    # uncentred: centring would remove the shared shift, which is the signal we want
    _, _, right = np.linalg.svd(differences, full_matrices=False)
    return right[0]
