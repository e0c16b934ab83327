"""Cross-model transfer: do entries that move one model along its direction move the others too?

    steerlab transfer --entries arena-export.jsonl --models gemma-3-270m,smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct

An independent direction is extracted on every model from the same pairs (at the same
relative depth, or a layer per model), and every entry is scored on every model with the
arena's score. Entries are grouped by the first (reference) model's ranking into top-k pro,
top-k anti and the middle k; for each group the study reports the share of entries whose
sign agrees on all models and the Spearman rank correlation between every pair of models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from steerlab.data import BUNDLED, load_pairs, load_texts, pairs_hash, texts_hash
from steerlab.directions import extract
from steerlab.errors import SteerlabError
from steerlab.models import load_model
from steerlab.studies.common import new_figure, save_figure, write_json


def load_entry_texts(source: str | Path) -> list[str]:
    """Entry texts from a bundled text set, an arena export (.jsonl/.csv) or a text file (one a line)."""
    if isinstance(source, str) and source in BUNDLED:
        texts = [item.text for item in load_texts(source)]
    else:
        path = Path(source)
        if not path.exists():
            raise SteerlabError(f"entries file not found: {path}; pass an arena export, a .jsonl text set or a text file")
        if path.suffix == ".csv" or (path.suffix == ".jsonl" and "format_version" in path.read_text(encoding="utf-8").split("\n", 1)[0]):
            from steerlab.arena import load_entries

            texts = [str(row["text"]) for row in load_entries(path)]
        elif path.suffix == ".jsonl":
            texts = [item.text for item in load_texts(path)]
        else:
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = list(dict.fromkeys(texts))
    if len(texts) < 6:
        raise SteerlabError(f"{source}: {len(texts)} distinct entries; the transfer study needs at least 6")
    return texts


@dataclass
class TransferResult:
    inputs: dict
    models: list[str]
    layers: dict[str, int]
    entries: list[dict] = field(default_factory=list)  # text, group, score per model
    groups: dict[str, dict] = field(default_factory=dict)  # sign agreement and Spearman per group
    overall_spearman: dict[str, float] = field(default_factory=dict)


def _group_indices(reference: np.ndarray, k: int) -> dict[str, np.ndarray]:
    order = np.argsort(-reference)  # highest (most pro) first
    middle_start = max(0, len(order) // 2 - k // 2)
    return {"top pro": order[:k], "top anti": order[::-1][:k], "middle": order[middle_start : middle_start + k]}


def _spearman_pairs(scores: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, float | None]:
    from scipy.stats import spearmanr

    result = {}
    for a, b in combinations(scores, 2):
        x, y = scores[a][indices], scores[b][indices]
        result[f"{a} ~ {b}"] = None if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0 else float(spearmanr(x, y).statistic)
    return result


def run_transfer(
    entries: list[str],
    models: list[str],
    pairs_name: str = "human-values",
    method: str = "logistic",
    depth: float = 0.4,
    layers: dict[str, int] | None = None,
    remove: tuple[str, ...] = (),
    top_k: int | None = None,
    seed: int = 0,
    entries_source: str = "",
    progress: bool = True,
) -> TransferResult:
    from steerlab.arena import ArenaScorer

    if len(models) < 2:
        raise SteerlabError("--models needs at least two models, comma-separated")
    pairs = load_pairs(pairs_name)
    k = top_k or max(2, len(entries) // 3)
    chosen_layers, scores = {}, {}
    for name in models:
        lm = load_model(name)
        layer = (layers or {}).get(name, round(depth * (lm.n_layers - 1)))
        lm.check_layer(layer)
        direction = extract(lm, pairs, method=method, layers=[layer], remove=remove, seed=seed, progress=progress, data_name=pairs_name)
        scorer = ArenaScorer(lm, direction, layer=layer)
        iterator = entries
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(entries, desc=f"scoring on {name}", leave=False)
        scores[name] = np.array([scorer.score(text).score for text in iterator])
        chosen_layers[name] = layer
    reference = scores[models[0]]
    groups = {}
    group_of = {}
    for group, indices in _group_indices(reference, k).items():
        signs = np.sign(np.stack([scores[m][indices] for m in models]))  # [models, k]
        agree = np.all(signs == signs[0], axis=0) & (signs[0] != 0)
        groups[group] = {"n": int(len(indices)), "sign_agreement": float(agree.mean()), "spearman": _spearman_pairs(scores, indices)}
        for index in indices:
            group_of.setdefault(int(index), group)
    rows = [{"text": text, "group": group_of.get(i, "other"), "scores": {m: float(scores[m][i]) for m in models}} for i, text in enumerate(entries)]
    return TransferResult(
        inputs={"study": "transfer", "models": models, "layers": chosen_layers, "depth": depth, "data": pairs_name, "data_hash": pairs_hash(pairs), "entries": entries_source, "entries_hash": texts_hash(entries), "n_entries": len(entries), "top_k": k, "method": method, "confounds_removed": list(remove), "seed": seed},
        models=models,
        layers=chosen_layers,
        entries=rows,
        groups=groups,
        overall_spearman=_spearman_pairs(scores, np.arange(len(entries))),
    )


def write_transfer(result: TransferResult, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [write_json(out_dir / "transfer.json", result)]
    pairs = list(combinations(result.models, 2))
    colours = {"top pro": "#55A868", "top anti": "#C44E52", "middle": "#8C8C8C", "other": "#CCCCCC"}
    figure, axes = new_figure(4.2 * len(pairs), 4.0, ncols=len(pairs))
    axes = np.atleast_1d(axes).ravel()
    for axis, (a, b) in zip(axes, pairs):
        for group, colour in colours.items():
            rows = [r for r in result.entries if r["group"] == group]
            axis.scatter([r["scores"][a] for r in rows], [r["scores"][b] for r in rows], s=14, color=colour, label=group)
        axis.axhline(0, color="black", linewidth=0.6)
        axis.axvline(0, color="black", linewidth=0.6)
        rho = result.overall_spearman.get(f"{a} ~ {b}")
        axis.set_title(f"Spearman {rho:+.2f}" if rho is not None else "Spearman n/a", fontsize=9)
        axis.set_xlabel(f"{a} score", fontsize=8)
        axis.set_ylabel(f"{b} score", fontsize=8)
    axes[0].legend(fontsize=7)
    figure.subplots_adjust(wspace=0.5)
    paths.append(save_figure(figure, out_dir / "transfer_scatter.png"))

    figure, axis = new_figure(5.6, 3.4)
    names = list(result.groups)
    values = [result.groups[g]["sign_agreement"] for g in names]
    axis.bar(names, values, color=[colours[g] for g in names])
    axis.set_ylim(0, 1)
    axis.set_ylabel("sign agrees on all models")
    axis.set_title(f"Transfer by group ({len(result.models)} models, k={result.inputs['top_k']})")
    paths.append(save_figure(figure, out_dir / "transfer_groups.png"))
    return paths
