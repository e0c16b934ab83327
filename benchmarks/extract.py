"""Benchmark: extracting `human-values` at every layer, three ways, side by side in one run.

    .venv/bin/python benchmarks/extract.py [--model gemma-3-270m] [--pairs human-values] [--repeats 2]

1. steerlab: `extract(...)` — length-sorted batches, forward stopped after the deepest layer,
   plus held-out separation per layer (more work than the others do);
2. naive: one text at a time with `output_hidden_states=True` (full model, unembedding included);
3. repeng 0.4: `ControlVector.train(..., method="pca_diff")` on the same pairs.

Each way runs on the same loaded model, interleaved round by round so machine load hits all
alike; the best of `--repeats` rounds is reported with ratios against steerlab. The numbers
go in the README.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from steerlab import extract, load_model, load_pairs


def naive_extract(lm, pairs) -> np.ndarray:
    """Reference implementation: per-text full forward passes, mean difference per layer."""
    sums = {"chosen": 0.0, "rejected": 0.0}
    with torch.no_grad():
        for pair in pairs:
            for side, text in (("chosen", pair.chosen_text()), ("rejected", pair.rejected_text())):
                ids = lm.tokenizer(text, return_tensors="pt")
                states = lm.model(**ids, output_hidden_states=True).hidden_states
                sums[side] = sums[side] + torch.stack([s[0, -1] for s in states[1:]]).double()
    difference = (sums["chosen"] - sums["rejected"]) / len(pairs)  # [layers, hidden]
    return (difference / difference.norm(dim=1, keepdim=True)).numpy()


def repeng_extract(lm, pairs):
    # repeng 0.4 annotates with np.float_, which NumPy 2 removed; restore the alias before import
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    from repeng import ControlVector, DatasetEntry

    dataset = [DatasetEntry(positive=p.chosen_text(), negative=p.rejected_text()) for p in pairs]
    return ControlVector.train(lm.model, lm.tokenizer, dataset, method="pca_diff", batch_size=32)


def interleaved_best(ways: dict, repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Run every way once per round, round after round, and keep each way's best wall time.

    Interleaving exposes every way to the same machine load; the best of the rounds filters
    out rounds that another process slowed down.
    """
    best: dict[str, float] = {}
    results: dict[str, object] = {}
    for _ in range(repeats):
        for name, function in ways.items():
            started = time.perf_counter()
            results[name] = function()
            elapsed = time.perf_counter() - started
            best[name] = min(best.get(name, elapsed), elapsed)
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="packaged model name (default gemma-3-270m)")
    parser.add_argument("--pairs", default="human-values", help="pair set (default human-values)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per way; the best time counts (default 2)")
    parser.add_argument("--skip-repeng", action="store_true", help="leave out the repeng comparison")
    args = parser.parse_args()

    lm = load_model(args.model)
    pairs = load_pairs(args.pairs)
    print(f"model {args.model} ({lm.n_layers} layers), {len(pairs)} pairs = {2 * len(pairs)} texts, torch threads {torch.get_num_threads()}")
    ways = {
        "steerlab extract (mean_diff + held-out)": lambda: extract(lm, pairs, method="mean_diff", layers="all", progress=False),
        "naive output_hidden_states loop": lambda: naive_extract(lm, pairs),
    }
    if not args.skip_repeng:
        ways["repeng 0.4 ControlVector.train"] = lambda: repeng_extract(lm, pairs)
    timings, results = interleaved_best(ways, args.repeats)

    # the two mean-difference implementations must agree before their speed means anything
    ours = results["steerlab extract (mean_diff + held-out)"].vectors.double().numpy()
    reference = results["naive output_hidden_states loop"]
    agreement = float(np.min(np.sum(ours * reference, axis=1)))
    base = timings["steerlab extract (mean_diff + held-out)"]
    print(f"{'way':42s} {'seconds':>8s} {'x steerlab':>11s}")
    for name, seconds in timings.items():
        print(f"{name:42s} {seconds:8.2f} {seconds / base:10.2f}x")
    print(f"min cosine steerlab vs naive mean_diff over layers 0..{lm.n_layers - 1}: {agreement:.6f}")


if __name__ == "__main__":
    main()
