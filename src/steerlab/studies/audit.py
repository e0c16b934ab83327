"""Confound audit: is the direction the concept, or sentiment, length or plain action?

    steerlab audit experiments/demo/human-values.safetensors

At one layer (default: the direction's default layer) the audit reads, in one batched pass,
the training pairs, the value-flip controls and the bundled confound sets, then reports:

- cosines of the direction with independent sentiment, length and action directions, each a
  logistic probe on its bundled set (a different estimator from the mean-difference vectors
  that extraction projects out, so a removed confound is not trivially zero); and the cosine
  of a probe trained only on action-vs-inaction;
- value-flip controls: the share of pairs where the kind side projects above the cruel side,
  and their mean margin relative to the training pairs' mean margin;
- estimator agreement: cosines between logistic, mean_diff, LDA and PCA directions fitted on
  the same pairs and layer (with the same confounds removed) and the saved direction;
- flags against stated thresholds and a one-paragraph assessment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from steerlab.activations import read_residuals
from steerlab.data import ContrastPair, load_pairs, pairs_hash
from steerlab.directions import Direction, get_estimator, project_out
from steerlab.directions.confounds import confound_texts
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.studies.common import StudyInputs, cosine, new_figure, save_figure, write_json

ESTIMATOR_NAMES = ("logistic", "mean_diff", "lda", "pca")


@dataclass(frozen=True)
class AuditThresholds:
    confound_moderate: float = 0.35  # |cosine| with a confound at or above this is a moderate flag
    confound_high: float = 0.5
    control_pass_rate: float = 0.7  # value-flip controls below this fail
    margin_ratio: float = 0.3  # value-flip margin / training margin below this fails
    estimator_agreement: float = 0.5  # lowest estimator cosine below this is noted


@dataclass
class AuditResult:
    inputs: StudyInputs
    layer: int
    confound_cosines: dict[str, float]
    confounds_removed_in_extraction: list[str]
    value_flip: dict
    estimator_cosines: dict
    thresholds: AuditThresholds
    flags: list[dict] = field(default_factory=list)
    assessment: str = ""


def _segments(pairs: list[ContrastPair], flips: list[ContrastPair]) -> dict[str, list[str]]:
    segments = {
        "train_chosen": [p.chosen_text() for p in pairs],
        "train_rejected": [p.rejected_text() for p in pairs],
        "flip_kind": [p.chosen_text() for p in flips],
        "flip_cruel": [p.rejected_text() for p in flips],
    }
    for name in ("sentiment", "length", "action"):
        positive, negative = confound_texts(name)
        segments[f"{name}_pos"], segments[f"{name}_neg"] = positive, negative
    return segments


def _level(value: float, thresholds: AuditThresholds) -> str:
    magnitude = abs(value)
    if magnitude >= thresholds.confound_high:
        return "high"
    if magnitude >= thresholds.confound_moderate:
        return "moderate"
    return "ok"


def run_audit(
    lm: LoadedModel,
    direction: Direction,
    direction_file: str | Path,
    layer: int | None = None,
    pairs_name: str | None = None,
    seed: int = 0,
    thresholds: AuditThresholds = AuditThresholds(),
    batch_size: int = 16,
    progress: bool = True,
) -> AuditResult:
    layer = direction.default_layer() if layer is None else layer
    lm.check_layer(layer)
    d = direction.vector(layer).double().numpy()  # [hidden]
    if d.shape[0] != lm.hidden_size:
        raise SteerlabError(f"the direction has hidden size {d.shape[0]} but {lm.name} has {lm.hidden_size}; audit it on the model it was made on ({direction.model})")
    pairs_name = pairs_name or str(direction.meta.get("data") or "human-values")
    pairs = load_pairs(pairs_name)
    flips = load_pairs("value-flip")

    segments = _segments(pairs, flips)
    texts = [text for segment in segments.values() for text in segment]
    acts = read_residuals(lm, texts, [layer], batch_size=batch_size, progress=progress, description="audit")[:, 0].double().numpy()
    split, start = {}, 0
    for name, segment in segments.items():
        split[name] = acts[start : start + len(segment)]  # [n, hidden]
        start += len(segment)

    logistic = get_estimator("logistic")
    confound_cosines = {}
    for name in ("sentiment", "length", "action"):
        confound_cosines[name] = cosine(logistic.fit(split[f"{name}_pos"], split[f"{name}_neg"], seed), d)
    # the "action probe" reads how much of d a pure action-vs-inaction probe recovers
    confound_cosines["action_probe_recovery"] = confound_cosines["action"]

    projections = {name: rows @ d for name, rows in split.items()}
    flip_margins = projections["flip_kind"] - projections["flip_cruel"]
    train_margin = float(np.mean(projections["train_chosen"] - projections["train_rejected"]))
    value_flip = {
        "pairs": [
            {"id": pair.id, "kind": pair.chosen, "cruel": pair.rejected, "margin": float(margin), "relative_margin": float(margin / train_margin) if train_margin else None}
            for pair, margin in zip(flips, flip_margins)
        ],
        "pass_rate": float(np.mean(flip_margins > 0)),
        "passed": int(np.sum(flip_margins > 0)),
        "n": len(flips),
        "mean_margin": float(np.mean(flip_margins)),
        "training_mean_margin": train_margin,
        "margin_ratio": float(np.mean(flip_margins) / train_margin) if train_margin else 0.0,
    }

    removed = list(direction.meta.get("confounds_removed") or [])
    removal = [get_estimator("mean_diff").fit(split[f"{name}_pos"], split[f"{name}_neg"], seed) for name in removed]
    vectors = {"saved": d}
    for name in ESTIMATOR_NAMES:
        vector = get_estimator(name).fit(split["train_chosen"], split["train_rejected"], seed)
        vectors[name] = project_out(vector, removal) if removal else vector
    names = list(vectors)
    matrix = [[cosine(vectors[a], vectors[b]) for b in names] for a in names]
    estimator_cosines = {"names": names, "matrix": matrix}

    inputs = StudyInputs.of("audit", direction, direction_file, layer, pairs_name, pairs_hash(pairs), seed, model=lm.name, model_revision=lm.revision)
    result = AuditResult(inputs, layer, confound_cosines, removed, value_flip, estimator_cosines, thresholds)
    result.flags = _flags(result)
    result.assessment = _assessment(result)
    return result


def _flags(result: AuditResult) -> list[dict]:
    t = result.thresholds
    flags = []
    for name in ("sentiment", "length", "action"):
        value = result.confound_cosines[name]
        note = " (projected out during extraction, so partly circular)" if name in result.confounds_removed_in_extraction else ""
        flags.append({"check": f"{name} confound", "value": value, "level": _level(value, t), "rule": f"|cos| >= {t.confound_moderate} moderate, >= {t.confound_high} high{note}"})
    flip = result.value_flip
    flags.append({"check": "value-flip pass rate", "value": flip["pass_rate"], "level": "ok" if flip["pass_rate"] >= t.control_pass_rate else "fail", "rule": f">= {t.control_pass_rate:.0%} of kind sides above cruel"})
    flags.append({"check": "value-flip margin ratio", "value": flip["margin_ratio"], "level": "ok" if flip["margin_ratio"] >= t.margin_ratio else "fail", "rule": f">= {t.margin_ratio} of the training margin"})
    matrix = np.array(result.estimator_cosines["matrix"])
    lowest = float(matrix[0, 1:].min())
    flags.append({"check": "estimator agreement (min cos with saved)", "value": lowest, "level": "ok" if lowest >= t.estimator_agreement else "moderate", "rule": f">= {t.estimator_agreement}; lower means a family of separating directions, not one axis"})
    return flags


def _assessment(result: AuditResult) -> str:
    c, flip = result.confound_cosines, result.value_flip
    worst = max(("sentiment", "length", "action"), key=lambda name: abs(c[name]))
    failing = [f["check"] for f in result.flags if f["level"] in ("high", "fail")]
    names = result.estimator_cosines["names"]
    method = result.inputs.direction_method
    others = [i for i, name in enumerate(names) if name not in ("saved", method)]
    agreement = np.array(result.estimator_cosines["matrix"])[0, others]
    verdict = "passes the audit" if not failing else "raises concerns (" + ", ".join(failing) + ")"
    return (
        f"At layer {result.layer} the direction {verdict}. Its largest confound cosine is with {worst} "
        f"({c[worst]:+.3f}); sentiment {c['sentiment']:+.3f}, length {c['length']:+.3f}, action {c['action']:+.3f}. "
        f"On value-flip controls, where both sides are equally active and only the effect on people flips, "
        f"the kind side projects higher in {flip['passed']}/{flip['n']} pairs, with a mean margin of "
        f"{flip['margin_ratio']:.2f}x the training contrast. The other estimators fitted on the same data agree with the saved "
        f"direction at cosines {agreement.min():.2f} to {agreement.max():.2f}"
        + (", so the data defines a family of separating directions rather than one axis." if agreement.min() < result.thresholds.estimator_agreement else ".")
        + " These are read-only checks: they say what the direction correlates with, not whether steering with it changes behaviour."
    )


def write_audit(result: AuditResult, out_dir: str | Path) -> list[Path]:
    """audit.json plus three plots; returns the written paths."""
    out_dir = Path(out_dir)
    paths = [write_json(out_dir / "audit.json", result)]
    t = result.thresholds

    figure, axis = new_figure(6.4, 3.2)
    names = ["sentiment", "length", "action"]
    values = [abs(result.confound_cosines[n]) for n in names]
    axis.barh(names, values, color=["#4C72B0" if v < t.confound_moderate else "#DD8452" if v < t.confound_high else "#C44E52" for v in values])
    axis.axvline(t.confound_moderate, color="orange", linestyle="--", label=f"moderate ({t.confound_moderate})")
    axis.axvline(t.confound_high, color="red", linestyle="--", label=f"high ({t.confound_high})")
    axis.set_xlim(0, 1)
    axis.set_xlabel("|cosine| with the direction")
    axis.set_title(f"Confound cosines, layer {result.layer}")
    axis.legend(loc="lower right", fontsize=8)
    paths.append(save_figure(figure, out_dir / "audit_confounds.png"))

    figure, axis = new_figure(6.4, 3.6)
    rows = result.value_flip["pairs"]
    margins = [r["relative_margin"] or 0.0 for r in rows]
    axis.bar(range(len(rows)), margins, color=["#55A868" if m > 0 else "#C44E52" for m in margins])
    axis.axhline(0, color="black", linewidth=0.8)
    axis.axhline(1, color="gray", linestyle=":", label="training mean margin")
    axis.set_xticks(range(len(rows)), [r["id"] for r in rows], rotation=60, fontsize=7)
    axis.set_ylabel("kind - cruel margin / training margin")
    axis.set_title(f"Value-flip controls: {result.value_flip['passed']}/{result.value_flip['n']} kind above cruel")
    axis.legend(fontsize=8)
    paths.append(save_figure(figure, out_dir / "audit_value_flip.png"))

    figure, axis = new_figure(5.2, 4.4)
    matrix = np.array(result.estimator_cosines["matrix"])
    labels = result.estimator_cosines["names"]
    image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    axis.set_xticks(range(len(labels)), labels, rotation=30)
    axis.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            axis.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8, color="white" if abs(matrix[i, j]) > 0.6 else "black")
    figure.colorbar(image, ax=axis, shrink=0.8)
    axis.set_title(f"Estimator agreement (cosine), layer {result.layer}")
    paths.append(save_figure(figure, out_dir / "audit_estimators.png"))
    return paths
