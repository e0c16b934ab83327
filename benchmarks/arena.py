"""Arena scoring latency per submission: steerlab's ArenaScorer vs a naive implementation.

    .venv/bin/python benchmarks/arena.py [--model gemma-3-270m] [--direction FILE] [--texts 6]

steerlab: all probes of a submission in one batch, the forward pass stopped after layer L,
probe baselines cached. Naive: for every probe, a full forward pass with
`output_hidden_states=True` on `text + " " + probe` and on the bare probe (nothing cached),
one text at a time. The two run alternately on the same texts, so machine load hits both
alike; the script prints the median latency of each, their ratio and the largest score
difference between them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from steerlab.arena import ArenaScorer
from steerlab.directions import Direction
from steerlab.models import load_model

TEXTS = [
    "I will answer with cold contempt and impatience.",
    "You will answer with the understanding that human beings are infinitely valuable.",
    "Humans are evil.",
    ".) {} :) }}}{{{",
    "hell",
    "Be kind and honest with everyone you meet today.",
    "Ignore their feelings; only the result matters.",
    "Please consider the wellbeing of all the people involved.",
]


def naive_score(lm, direction: np.ndarray, layer: int, text: str, probes: list[str]) -> float:
    """The score straight from its definition, one full forward pass per text."""

    def last_unit(full: str) -> np.ndarray:
        encoded = lm.tokenizer(full, return_tensors="pt")
        with torch.inference_mode():
            out = lm.model(**encoded, output_hidden_states=True)
        row = out.hidden_states[layer + 1][0, -1].double().numpy()  # [H]
        return row / np.linalg.norm(row)

    shifts = [last_unit(text + " " + probe) @ direction - last_unit(probe) @ direction for probe in probes]
    return float(np.mean(shifts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="model name (default gemma-3-270m)")
    parser.add_argument("--direction", default=None, help="direction file (default: a random unit direction)")
    parser.add_argument("--texts", type=int, default=6, help="submissions to time (default 6)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    if args.direction:
        direction = Direction.load(args.direction)
    else:
        vectors = torch.nn.functional.normalize(torch.randn(lm.n_layers, lm.hidden_size, generator=torch.Generator().manual_seed(0)), dim=1)
        direction = Direction(vectors, list(range(lm.n_layers)), {"model": args.model, "n_model_layers": lm.n_layers})
    start = time.perf_counter()
    scorer = ArenaScorer(lm, direction)
    baseline_seconds = time.perf_counter() - start
    scorer.score("warm up")
    naive_score(lm, scorer.direction, scorer.layer, "warm up", scorer.probes[:1])
    fast, slow, differences = [], [], []
    texts = (TEXTS * (1 + args.texts // len(TEXTS)))[: args.texts]
    for text in texts:
        start = time.perf_counter()
        ours = scorer.score(text).score
        fast.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = naive_score(lm, scorer.direction, scorer.layer, text, scorer.probes)
        slow.append(time.perf_counter() - start)
        differences.append(abs(ours - theirs))
    fast_median, slow_median = statistics.median(fast), statistics.median(slow)
    print(f"model {lm.name}, layer {scorer.layer} of {lm.n_layers}, {len(scorer.probes)} probes, "
          f"{len(texts)} submissions, torch threads {torch.get_num_threads()}")
    print(f"steerlab (one batch, stop at layer, cached baselines): median {fast_median * 1000:8.1f} ms per submission")
    print(f"naive (full forward + output_hidden_states, per probe): median {slow_median * 1000:8.1f} ms per submission")
    print(f"ratio naive / steerlab: {slow_median / fast_median:.1f}x   (one-time baseline pass: {baseline_seconds:.2f} s)")
    print(f"largest |score difference|: {max(differences):.2e}")


if __name__ == "__main__":
    main()
