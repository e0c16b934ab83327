"""Arena scoring: how far a prefix moves the model's last token along a direction.

    from steerlab.arena import ArenaScorer
    scorer = ArenaScorer(lm, Direction.load("hv.safetensors"))       # layer: direction.default_layer()
    result = scorer.score("I will answer with cold contempt.")
    result.score, result.spec_z, result.shifts                        # float, float, [P] floats

Definitions (DESIGN.md, "Arena score"), with R_L the residual at layer L (output of decoder
block L), the last token read, unit direction d, probes p_1..p_P and `s ⊕ p = s + " " + p`:

    score(s)  = mean_i [ cos(R_L(s ⊕ p_i)[-1], d) − cos(R_L(p_i)[-1], d) ]       (shifts = the terms)
    δ_i       = unit(R_L(s ⊕ p_i)[-1]) − unit(R_L(p_i)[-1]),  Δ = [δ_1 .. δ_P]   # [P, H]
    spec_z    = score / (‖Δ‖_F / sqrt(P·H))   = sqrt(H)·cos(mean δ, d)·coherence, bounded by sqrt(H)

All P probes of one submission run as one batch (right padding, so every text keeps the
positions it has alone) through `read_residuals`, which stops the forward pass after block L.
The probe baselines are computed once per (model, direction, layer, probe set) and cached;
cosines are taken in float64.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from steerlab.activations import read_residuals
from steerlab.data import load_texts, texts_hash
from steerlab.directions import Direction
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel

DEFAULT_PROBES = "neutral-probes"


class ScoringTimeout(SteerlabError):
    """A scoring pass ran past its time limit; the pass was stopped between decoder blocks."""


@dataclass
class ArenaScore:
    """The score of one submission, with what it was measured on."""

    text: str
    score: float  # mean per-probe cosine shift along d
    spec_z: float  # score against random unit directions (closed form), bounded by sqrt(H)
    shifts: list[float]  # [P] cos(R(s ⊕ p_i), d) − cos(R(p_i), d)
    coherence: float  # ‖mean δ‖ / rms ‖δ_i‖ in [0, 1]
    delta_norm: float  # ‖Δ‖_F
    n_tokens: int  # tokens of the submitted text alone (no special tokens)
    layer: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "score": self.score,
            "spec_z": self.spec_z,
            "shifts": list(self.shifts),
            "coherence": self.coherence,
            "delta_norm": self.delta_norm,
            "n_tokens": self.n_tokens,
            "layer": self.layer,
            "seconds": self.seconds,
        }


@dataclass
class Baseline:
    """Unit last-token residuals of the bare probes and their cosines with d."""

    units: np.ndarray  # [P, H] float64, unit rows
    cosines: np.ndarray  # [P] float64
    seconds: float


@dataclass
class ScoreParts:
    """The arithmetic of the score from raw rows; kept apart so it can be checked independently."""

    shifts: np.ndarray  # [P]
    score: float
    spec_z: float
    coherence: float
    delta_norm: float


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64; a zero row stays zero.  # [n, H]"""
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def score_parts(shifted_units: np.ndarray, baseline_units: np.ndarray, direction: np.ndarray) -> ScoreParts:
    """score, spec_z and coherence from unit rows `[P, H]` (with and without prefix) and unit d `[H]`."""
    delta = shifted_units - baseline_units  # [P, H]
    shifts = delta @ direction  # [P]; cos differences because rows and d are unit
    count, hidden = delta.shape
    score = float(shifts.mean())
    delta_norm = float(np.linalg.norm(delta))
    null_std = delta_norm / math.sqrt(count * hidden)
    spec_z = score / null_std if null_std > 0 else 0.0
    rms = math.sqrt(float((delta**2).sum(axis=1).mean()))
    coherence = float(np.linalg.norm(delta.mean(axis=0)) / rms) if rms > 0 else 0.0
    return ScoreParts(shifts=shifts, score=score, spec_z=float(spec_z), coherence=coherence, delta_norm=delta_norm)


def resolve_probes(probes: Sequence[str] | str | None) -> tuple[list[str], str]:
    """Probe texts and a name for them: a bundled set name / JSONL path, or a list of texts."""
    if probes is None:
        probes = DEFAULT_PROBES
    if isinstance(probes, str):
        texts = [item.text for item in load_texts(probes)]
        name = probes
    else:
        texts = [str(text) for text in probes]
        name = f"custom-{texts_hash(texts)}"
    if not texts:
        raise SteerlabError("the probe set is empty; pass at least one probe text (default: bundled neutral-probes)")
    return texts, name


def direction_hash(vector: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float64).tobytes()).hexdigest()[:16]


# model module -> {(direction hash, layer, probes hash): Baseline}; weak keys so a freed model frees its cache
_BASELINES: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
_BASELINES_LOCK = threading.Lock()


@contextmanager
def deadline(lm: LoadedModel, seconds: float | None) -> Iterator[None]:
    """Raise ScoringTimeout at the next decoder block once `seconds` have passed (None: no limit)."""
    if seconds is None:
        yield
        return
    limit = time.monotonic() + seconds

    def check(_module, _inputs):
        if time.monotonic() > limit:
            raise ScoringTimeout(f"scoring took longer than {seconds:g} s and was stopped; raise the scoring timeout")

    handles = []
    try:
        for block in lm.blocks:
            handles.append(block.register_forward_pre_hook(check))
        yield
    finally:
        for handle in handles:
            handle.remove()


class ArenaScorer:
    """Scores submissions for one (model, direction, layer, probe set).

    `layer` defaults to `direction.default_layer()` (the recorded default, else 40% depth:
    layer 7 of gemma-3-270m's 18). `probes` is a bundled text-set name, a JSONL path or a list
    of texts (default: bundled `neutral-probes`). `timeout` bounds one scoring pass in seconds.
    """

    def __init__(
        self,
        lm: LoadedModel,
        direction: Direction,
        layer: int | None = None,
        probes: Sequence[str] | str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.lm = lm
        self.layer = lm.check_layer(int(direction.default_layer() if layer is None else layer))
        if direction.hidden_size != lm.hidden_size:
            raise SteerlabError(
                f"the direction has hidden size {direction.hidden_size} (model {direction.model or '?'}) but "
                f"{lm.name} has {lm.hidden_size}; score with the model the direction was extracted from"
            )
        raw = direction.vector(self.layer).double().numpy()
        norm = float(np.linalg.norm(raw))
        if norm == 0:
            raise SteerlabError(f"the direction's vector at layer {self.layer} is zero; re-extract it")
        self.direction = raw / norm  # [H] float64 unit
        self.direction_hash = direction_hash(self.direction)
        self.direction_name = str(direction.meta.get("name") or direction.meta.get("data") or "direction")
        self.probes, self.probe_set = resolve_probes(probes)
        self.probes_hash = texts_hash(self.probes)
        self.timeout = timeout
        self._lock = threading.Lock()  # one forward pass at a time per scorer
        # fast tokenizers keep padding state in the shared Rust object, so counting tokens from a request
        # thread while a batch is encoded could corrupt that batch: counting gets its own copy and lock
        self._count_tokenizer = copy.deepcopy(lm.tokenizer)
        self._count_lock = threading.Lock()
        self.baseline = self._baseline()

    @property
    def model_name(self) -> str:
        return self.lm.name

    @property
    def model_revision(self) -> str:
        return self.lm.revision

    def _last_rows(self, texts: list[str]) -> np.ndarray:
        """Last-token residuals at self.layer, all texts in one batch.  # [n, H] float64"""
        with deadline(self.lm, self.timeout):
            rows = read_residuals(
                self.lm, texts, [self.layer], position="last", batch_size=max(1, len(texts)),
                padding_side="right", progress=False,
            )  # [n, 1, H]
        return rows[:, 0, :].double().numpy()

    def _baseline(self) -> Baseline:
        key = (self.direction_hash, self.layer, self.probes_hash)
        with _BASELINES_LOCK:
            cached = _BASELINES.setdefault(self.lm.model, {}).get(key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        with self._lock:
            units = unit_rows(self._last_rows(self.probes))  # [P, H]
        baseline = Baseline(units=units, cosines=units @ self.direction, seconds=time.perf_counter() - start)
        with _BASELINES_LOCK:
            _BASELINES.setdefault(self.lm.model, {})[key] = baseline
        return baseline

    def count_tokens(self, text: str) -> int:
        """Tokens of text alone (no special tokens); safe to call while a scoring pass runs."""
        with self._count_lock:
            return len(self._count_tokenizer(text, add_special_tokens=False)["input_ids"])

    def joined(self, text: str) -> list[str]:
        """The P texts a submission is scored on: `text + " " + probe`."""
        return [text + " " + probe for probe in self.probes]

    def score(self, text: str) -> ArenaScore:
        """Score one submission: its P probe texts run as one batch stopped at the layer."""
        if not isinstance(text, str) or not text.strip():
            raise SteerlabError("the submission text is empty; pass a non-empty text")
        start = time.perf_counter()
        with self._lock:
            shifted = unit_rows(self._last_rows(self.joined(text)))  # [P, H]
        parts = score_parts(shifted, self.baseline.units, self.direction)
        return ArenaScore(
            text=text,
            score=parts.score,
            spec_z=parts.spec_z,
            shifts=[float(value) for value in parts.shifts],
            coherence=parts.coherence,
            delta_norm=parts.delta_norm,
            n_tokens=self.count_tokens(text),
            layer=self.layer,
            seconds=time.perf_counter() - start,
        )

    def score_many(self, texts: Sequence[str]) -> list[ArenaScore]:
        """Score several submissions, each in its own batch (so each equals `score(text)` exactly)."""
        return [self.score(text) for text in texts]

    def describe(self) -> dict:
        """What a season records: model, direction, layer and probe set."""
        return {
            "model": self.model_name,
            "model_revision": self.model_revision,
            "direction_hash": self.direction_hash,
            "direction_name": self.direction_name,
            "layer": self.layer,
            "probe_set": self.probe_set,
            "probes_hash": self.probes_hash,
            "n_probes": len(self.probes),
            "hidden_size": int(self.direction.shape[0]),
        }


@dataclass
class ProbeShift:
    """One row of the per-probe table."""

    probe: str
    baseline_cos: float
    shift: float


def probe_table(scorer: ArenaScorer, result: ArenaScore) -> list[ProbeShift]:
    return [
        ProbeShift(probe=probe, baseline_cos=float(base), shift=shift)
        for probe, base, shift in zip(scorer.probes, scorer.baseline.cosines, result.shifts)
    ]
