"""Read-vs-steer layer sweep: where a direction can be read and where writing it changes behaviour.

    steerlab sweep --model gemma-3-270m --pairs human-values --layers all --strengths 0.5,1,2

For every layer: held-out separation of that layer's own direction (reading), and the judged
trait delta and coherence when steering with it at each relative strength (writing). The
steering grid reuses steerlab.evaluation, so every (layer, strength) candidate of the sweep is
generated in one per-sample batch, judged, and stored in a resumable results file; re-running
the command does no new generation. One plot shows both curves over depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from steerlab.data import load_pairs, pairs_hash
from steerlab.directions import extract
from steerlab.evaluation import EvalConfig, evaluate_steering
from steerlab.judges import get_judge, load_trait
from steerlab.layerspec import parse_layers
from steerlab.models.loading import LoadedModel
from steerlab.studies.common import new_figure, save_figure, write_json


@dataclass
class SweepResult:
    inputs: dict
    strengths: list[float]
    rows: list[dict] = field(default_factory=list)  # one per layer: reading + writing per strength
    baseline_trait: float | None = None
    baseline_coherence: float | None = None
    best_reading_layer: int | None = None
    best_steering_layer: int | None = None
    results_file: str = ""
    min_coherence: float = 77.0


def run_sweep(
    lm: LoadedModel,
    pairs_name: str,
    out_dir: str | Path,
    layers: str = "all",
    strengths: tuple[float, ...] = (0.5, 1.0, 2.0),
    method: str = "logistic",
    remove: tuple[str, ...] = (),
    trait_name: str = "human-values",
    judge_name: str = "local",
    subset: int = 5,
    max_new_tokens: int | None = None,
    min_coherence: float = 77.0,
    seed: int = 0,
    progress: bool = True,
) -> SweepResult:
    out_dir = Path(out_dir)
    pairs = load_pairs(pairs_name)
    layer_list = parse_layers(layers, lm.n_layers)
    direction = extract(lm, pairs, method=method, layers=layer_list, remove=remove, seed=seed, progress=progress, data_name=pairs_name)
    direction_path = direction.save(out_dir / "sweep_direction.safetensors")
    trait = load_trait(trait_name)
    config = EvalConfig(
        experiment="sweep",
        layers=",".join(str(layer) for layer in layer_list),
        strengths=tuple(strengths),
        subset=subset,
        max_new_tokens=max_new_tokens,
        min_coherence=min_coherence,
        save_responses="all",
        results_root=str(out_dir),
    )
    summary = evaluate_steering(lm, direction_path, trait, get_judge(judge_name), config, log=lambda message: None)
    runs = {}
    for run in summary.runs:
        runs.setdefault(run["layer"], []).append(run)
    rows = []
    for layer in layer_list:
        held = direction.held_out(layer) or {}
        writing = []
        for run in sorted(runs.get(layer, []), key=lambda r: abs(r["strength"])):
            writing.append({"strength": round(run["strength"], 4), "coef": run["coef"], "delta": run["delta"], "trait": run["trait_mean"], "coherence": run["coherence_mean"], "valid": run["valid"]})
        valid_deltas = [w["delta"] for w in writing if w["valid"] and w["delta"] is not None]
        rows.append({
            "layer": layer,
            "depth": layer / max(1, lm.n_layers - 1),
            "accuracy": held.get("accuracy"),
            "auroc": held.get("auroc"),
            "writing": writing,
            "best_valid_delta": max(valid_deltas) if valid_deltas else None,
        })
    readable = [r for r in rows if r["auroc"] is not None]
    steerable = [r for r in rows if r["best_valid_delta"] is not None]
    return SweepResult(
        inputs={"study": "sweep", "model": lm.name, "model_revision": lm.revision, "layers": layer_list, "data": pairs_name, "data_hash": pairs_hash(pairs), "seed": seed, "method": method, "confounds_removed": list(remove), "trait": trait.name, "judge": summary.baseline.get("judge"), "subset": subset},
        strengths=list(strengths),
        rows=rows,
        baseline_trait=summary.baseline.get("trait_mean"),
        baseline_coherence=summary.baseline.get("coherence_mean"),
        best_reading_layer=max(readable, key=lambda r: (r["auroc"], -r["layer"]))["layer"] if readable else None,
        best_steering_layer=max(steerable, key=lambda r: r["best_valid_delta"])["layer"] if steerable else None,
        results_file=str(summary.path),
        min_coherence=min_coherence,
    )


def write_sweep(result: SweepResult, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [write_json(out_dir / "sweep.json", result)]
    figure, axes = new_figure(7.0, 6.2, nrows=2, sharex=True)
    read_axis, write_axis = axes[0, 0], axes[1, 0]
    layers = [r["layer"] for r in result.rows]
    read_axis.plot(layers, [r["accuracy"] for r in result.rows], "o-", label="held-out pairwise accuracy")
    read_axis.plot(layers, [r["auroc"] for r in result.rows], "s--", label="held-out AUROC")
    read_axis.axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
    read_axis.set_ylim(0.3, 1.05)
    read_axis.set_ylabel("reading")
    read_axis.set_title(f"Read vs steer across depth ({result.inputs['model']})")
    read_axis.legend(fontsize=8, loc="lower right")
    for strength in result.strengths:
        deltas, valid_layers, valid_deltas = [], [], []
        for row in result.rows:
            match = next((w for w in row["writing"] if abs(abs(w["strength"]) - abs(strength)) < 1e-3), None)
            deltas.append(match["delta"] if match else None)
            if match and match["valid"] and match["delta"] is not None:
                valid_layers.append(row["layer"])
                valid_deltas.append(match["delta"])
        line = write_axis.plot(layers, [d if d is not None else float("nan") for d in deltas], "o-", fillstyle="none", label=f"strength {strength:g}")
        write_axis.plot(valid_layers, valid_deltas, "o", color=line[0].get_color())
    write_axis.axhline(0, color="black", linewidth=0.8)
    write_axis.set_xlabel("layer (filled markers: coherence >= %g)" % result.min_coherence)
    write_axis.set_ylabel("steering delta (trait score)")
    write_axis.legend(fontsize=8)
    paths.append(save_figure(figure, out_dir / "sweep.png"))
    return paths
