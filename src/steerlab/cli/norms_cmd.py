"""`steerlab norms`: the per-layer residual norm table used for relative steering strengths.

    steerlab norms --model gemma-3-270m
"""

from __future__ import annotations

import argparse

from steerlab.cli.table import format_table
from steerlab.models import DEFAULT_MODEL, load_model
from steerlab.steering import residual_norms


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "norms",
        help="print each layer's typical residual norm (cached per model)",
        description="Mean and median residual norm per layer on the neutral-probes texts, and massive dimensions (>100x the median).",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"packaged model name, folder or hub id (default {DEFAULT_MODEL})")
    parser.add_argument("--layers", default=None, help="layer spec such as all, 30%%-60%% or 4,6,8 (default all)")
    parser.set_defaults(run=run_norms)


def run_norms(args: argparse.Namespace) -> int:
    from steerlab.layerspec import parse_layers

    lm = load_model(args.model)
    layers = None if args.layers is None else parse_layers(args.layers, lm.n_layers)
    stats = residual_norms(lm, layers)
    rows = []
    for layer, s in stats.items():
        massive = ", ".join(f"{d}:{v:.0f}" for d, v in s.massive_dims[:4]) or "-"
        rows.append([layer, round(s.mean, 2), round(s.median, 2), len(s.massive_dims), massive])
    print(format_table(["layer", "mean norm", "median norm", "massive dims", "largest (dim:mean|x|)"], rows))
    print(f"\n{lm.name} ({lm.revision}): {next(iter(stats.values())).n_tokens} probe tokens per layer")
    return 0
