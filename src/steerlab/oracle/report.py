"""One dreaming run end to end: dream, save the vector and curves, steer, compare, write a report.

    report = run_dream(oracle, DreamConfig(question=Q, answer="birds"), RunOptions(out="experiments/oracle/birds"))

Writes into `out`: `vector.safetensors` (a steerlab Direction at the oracle's layer),
`losses.json` and `losses.png` (NLL, norm and, for red-team runs, MSE per step),
`continuations.json` (greedy continuations of the bundled prompts at -s, 0, +s with concept
mentions marked) and `report.json` (everything the CLI prints). When the answer is a choice of
a bundled task, a mean-difference vector for it is built from the bundled sources and compared:
cosine, top-100 component overlap, the oracle's probability on it, and its own steering counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from steerlab.activations import LAYER_CONVENTION
from steerlab.directions import Direction
from steerlab.oracle.compare import (
    compare_vectors,
    concept_keywords,
    continuation_prompts,
    judge_concept,
    logit_lens,
    mean_diff_vector,
    mention_count,
    mentions,
    steered_continuations,
    task_for_answer,
)
from steerlab.oracle.dream import DreamConfig, DreamResult, dream, measure_mse


@dataclass
class RunOptions:
    """What to do around the optimisation itself."""

    out: str
    strength: float = 0.2  # steering strength s for continuations (relative to the layer's mean residual norm)
    max_new_tokens: int = 24
    n_prompts: int = 24  # bundled continuation prompts to use (at most 24)
    keywords: list[str] | None = None  # words that count as mentioning the concept (default: bundled list)
    compare: bool = True  # build and compare the mean-difference vector when the answer is a bundled choice
    judge: str | None = None  # judge backend name (e.g. "local") for a judged steering effect
    lens_k: int = 12


@dataclass
class SteeringCounts:
    strength: float
    mentions: int
    n: int
    judged: float | None = None


@dataclass
class DreamReport:
    question: str
    answer: str
    redteam: bool
    prob: float
    converged: bool
    steps_run: int
    kept_step: int
    seconds: float
    mse: float | None
    raw_mse: float | None
    steering: list[SteeringCounts] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    mean_diff: dict | None = None  # cosine, top_overlap, oracle_prob, steering counts, mse
    files: dict = field(default_factory=dict)


def _atomic_json(path: Path, payload) -> None:
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    partial.write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    os.replace(partial, path)


def plot_losses(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in history]
    panels = [("nll", "oracle NLL of the answer"), ("norm", "||v||")] + ([("mse", "relative final-layer MSE")] if "mse" in history[0] else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2))
    for axis, (key, label) in zip(axes, panels):
        axis.plot(steps, [row[key] for row in history])
        axis.set_xlabel("step")
        axis.set_title(label, fontsize=10)
        if key == "nll":
            axis.set_yscale("log")
            axis.axhline(0.01, color="grey", linestyle="--", linewidth=0.8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    partial = path.with_name(path.stem + f".partial-{os.getpid()}.png")
    figure.savefig(partial, dpi=110)
    plt.close(figure)
    os.replace(partial, path)


def save_direction(result: DreamResult, oracle, path: Path, oracle_dir: str) -> Path:
    from steerlab import __version__
    from steerlab.steering import mean_norm

    lm = oracle.lm
    meta = {
        "model": lm.name, "model_revision": lm.revision, "n_model_layers": lm.n_layers, "layer_convention": LAYER_CONVENTION,
        "position": "all (dreamed vector)", "method": "dream-redteam" if result.config.get("redteam") else "dream",
        "confounds_removed": [], "held_out": [], "norms": [{"layer": result.layer, "mean": mean_norm(lm, result.layer)}],
        "data": f"oracle:{oracle_dir}", "data_hash": oracle.manifest.data_hash, "seed": result.config.get("seed"),
        "oracle": {"dir": oracle_dir, "kind": oracle.manifest.kind, "question": result.config["question"], "answer": result.config["answer"],
                   "prob": result.prob, "nll": result.nll, "converged": result.converged, "mse": result.mse, "raw_mse": result.raw_mse,
                   "kept_step": result.kept_step, "steps_run": result.steps_run, "config": result.config},
        "default_layer": result.layer, "steerlab_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Direction(result.vector.unsqueeze(0), [result.layer], meta).save(path)


def _counts(lm, layer, vector, options: RunOptions, prompts, keywords, concept) -> tuple[list[SteeringCounts], dict]:
    texts = steered_continuations(lm, layer, vector, options.strength, prompts, options.max_new_tokens)
    rows = []
    for strength, outputs in texts.items():
        judged = judge_concept(prompts, outputs, concept, options.judge) if options.judge else None
        rows.append(SteeringCounts(strength, mention_count(outputs, keywords), len(outputs), judged))
    return rows, texts


def run_dream(oracle, config: DreamConfig, options: RunOptions, oracle_dir: str = "", progress: bool = True) -> DreamReport:
    """Dream (or red-team) a vector and check it; every output file is written atomically into options.out."""
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    result = dream(oracle, config, progress=progress)
    lm, layer = oracle.lm, oracle.layer
    vector_path = save_direction(result, oracle, out / "vector.safetensors", oracle_dir)
    _atomic_json(out / "losses.json", {"config": result.config, "history": result.history, "kept_step": result.kept_step})
    plot_losses(result.history, out / "losses.png", f"{'red-team ' if config.redteam else ''}dream: {config.answer!r}")
    mse, raw = result.mse, result.raw_mse
    if mse is None:
        mse, raw = measure_mse(lm, layer, result.vector, config.strength, config.n_neutral)

    prompts = continuation_prompts()[: options.n_prompts]
    keywords = options.keywords or concept_keywords(config.answer)
    steering, texts = _counts(lm, layer, result.vector, options, prompts, keywords, config.answer)
    promoted, suppressed = logit_lens(lm, result.vector, options.lens_k)
    mean_diff = None
    bundled = task_for_answer(config.answer) if options.compare else None
    if bundled is not None:
        md = mean_diff_vector(oracle, bundled[0], bundled[1])
        md = md / md.norm()
        with torch.no_grad():
            md_prob = float(oracle.prob(md, config.question, config.answer))
        md_steering, md_texts = _counts(lm, layer, md, options, prompts, keywords, config.answer)
        md_mse, _ = measure_mse(lm, layer, md, config.strength, config.n_neutral)
        mean_diff = {**compare_vectors(result.vector, md), "oracle_prob": md_prob, "mse": md_mse,
                     "steering": [asdict(row) for row in md_steering], "task": bundled[0]}
        texts = {"dreamed": texts, "mean_diff": md_texts}
    else:
        texts = {"dreamed": texts}
    _atomic_json(out / "continuations.json", {
        "prompts": prompts, "keywords": keywords,
        "vectors": {name: {str(s): [{"text": t, "mentions": mentions(t, keywords)} for t in outs] for s, outs in by_strength.items()}
                    for name, by_strength in texts.items()},
    })
    report = DreamReport(
        question=config.question, answer=config.answer, redteam=config.redteam, prob=result.prob, converged=result.converged,
        steps_run=result.steps_run, kept_step=result.kept_step, seconds=result.seconds, mse=mse, raw_mse=raw,
        steering=steering, promoted=[row.token for row in promoted], suppressed=[row.token for row in suppressed], mean_diff=mean_diff,
        files={"vector": str(vector_path), "losses": str(out / "losses.json"), "plot": str(out / "losses.png"),
               "continuations": str(out / "continuations.json"), "report": str(out / "report.json")},
    )
    _atomic_json(out / "report.json", asdict(report))
    return report
