"""Summaries of a steering evaluation: the best-per-layer table and a trait-vs-coherence plot.

    from steerlab.evaluation.report import best_table, write_plot
    print(best_table(summary))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from steerlab.cli.table import format_table


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def best_table(best_per_layer: dict[int, dict]) -> str:
    """One row per layer: its best valid run."""
    rows = [
        [layer, _round(r["coef"], 3), _round(r["strength"], 3), _round(r["trait_mean"]), _round(r["coherence_mean"]), _round(r["delta"])]
        for layer, r in best_per_layer.items()
    ]
    return format_table(["layer", "coef", "strength", "trait", "coherence", "delta"], rows)


def runs_table(runs: Sequence[dict]) -> str:
    rows = [
        [r["layer"], _round(r["coef"], 3), _round(r["strength"], 3), r.get("step"), _round(r["trait_mean"]),
         _round(r["coherence_mean"]), _round(r["delta"]), bool(r["valid"])]
        for r in sorted(runs, key=lambda r: (r["layer"], abs(r["coef"])))
    ]
    return format_table(["layer", "coef", "strength", "step", "trait", "coherence", "delta", "valid"], rows)


def write_plot(path: Path, baseline: dict, runs: Sequence[dict], min_coherence: float, trait: str) -> Path | None:
    """PNG of trait score against coherence, one colour per layer; written atomically."""
    points = [r for r in runs if r["trait_mean"] is not None and r["coherence_mean"] is not None]
    if not points and baseline.get("trait_mean") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    layers = sorted({r["layer"] for r in points})
    colours = plt.cm.viridis([i / max(1, len(layers) - 1) for i in range(len(layers))])
    for colour, layer in zip(colours, layers):
        mine = sorted((r for r in points if r["layer"] == layer), key=lambda r: abs(r["coef"]))
        axes.plot([r["coherence_mean"] for r in mine], [r["trait_mean"] for r in mine], "o-", color=colour, label=f"L{layer}", alpha=0.8)
    if baseline.get("trait_mean") is not None and baseline.get("coherence_mean") is not None:
        axes.plot([baseline["coherence_mean"]], [baseline["trait_mean"]], "k*", markersize=14, label="baseline")
    axes.axvline(min_coherence, color="red", linestyle="--", linewidth=1, label=f"min coherence {min_coherence:g}")
    axes.set_xlabel("coherence (0-100)")
    axes.set_ylabel(f"{trait} score (0-100)")
    axes.set_title(f"steering: {trait} vs coherence per layer")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    partial = path.with_name(path.name + f".partial-{os.getpid()}.png")
    figure.savefig(partial)
    plt.close(figure)
    os.replace(partial, path)
    return path
