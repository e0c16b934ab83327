"""`steerlab extract` and `steerlab export-gguf`: make a direction file, convert it for llama.cpp."""

from __future__ import annotations

import argparse

from steerlab.cli.table import format_table
from steerlab.data import load_pairs
from steerlab.directions import CONFOUNDS, ESTIMATORS, Direction, export_gguf, extract
from steerlab.errors import SteerlabError
from steerlab.models import DEFAULT_MODEL, load_model


def parse_position(text: str):
    if text in ("last", "mean"):
        return text
    try:
        return int(text)
    except ValueError:
        raise SteerlabError(f"--position {text!r}: use last, mean or a token index such as -2") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="extract a direction from contrastive pairs at one or many layers",
        description="Read the residual stream of every pair once, fit a direction per layer, report held-out separation.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"packaged model name, folder, .gguf or hub id (default {DEFAULT_MODEL})")
    parser.add_argument("--pairs", default="human-values", help="bundled pair set name or a .jsonl path (default human-values)")
    parser.add_argument("--method", default="logistic", help=f"estimator: {', '.join(ESTIMATORS)} (default logistic)")
    parser.add_argument("--layers", default="all", help="all, 30%%-60%%, 4,6,8 or 4-8 (default all)")
    parser.add_argument("--remove", default="", help=f"confounds to project out, comma-separated: {', '.join(CONFOUNDS)}")
    parser.add_argument("--position", default="last", help="read position: last, mean or a token index (default last)")
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of pairs held out for separation (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and estimators (default 0)")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per forward pass (default 16)")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.set_defaults(run=run_extract)

    export = subparsers.add_parser(
        "export-gguf",
        help="write a direction as a llama.cpp control-vector GGUF",
        description="Vectors are scaled by each layer's mean residual norm, so llama.cpp's scale equals steerlab's relative strength.",
    )
    export.add_argument("direction", help="steerlab .safetensors direction file")
    export.add_argument("--out", required=True, help="output .gguf file")
    export.add_argument("--unit", action="store_true", help="write unit vectors instead of norm-scaled ones")
    export.set_defaults(run=run_export)


def run_extract(args: argparse.Namespace) -> int:
    remove = tuple(name.strip() for name in args.remove.split(",") if name.strip())
    if args.method not in ESTIMATORS:
        from steerlab.directions import get_estimator

        get_estimator(args.method)  # raises the listing error before any model load
    pairs = load_pairs(args.pairs)
    lm = load_model(args.model)
    direction = extract(
        lm,
        pairs,
        method=args.method,
        layers=args.layers,
        remove=remove,
        position=parse_position(args.position),
        holdout=args.holdout,
        seed=args.seed,
        batch_size=args.batch_size,
        data_name=str(args.pairs),
    )
    direction.save(args.out)
    print(separation_table(direction))
    meta = direction.meta
    removed = ", ".join(meta["confounds_removed"]) or "none"
    print(
        f"\n{meta['method']} direction of {meta['model']} from {meta['n_pairs']} pairs "
        f"(confounds removed: {removed}) in {meta['seconds']:.1f} s -> {args.out}"
    )
    return 0


def separation_table(direction: Direction) -> str:
    rows = []
    for layer in direction.layers:
        held = direction.held_out(layer) or {}
        rows.append([layer, held.get("accuracy"), held.get("auroc"), direction.mean_norm(layer)])
    return format_table(["layer", "held-out acc", "AUROC", "mean norm"], rows)


def run_export(args: argparse.Namespace) -> int:
    direction = Direction.load(args.direction)
    path = export_gguf(direction, args.out, scale_by_norm=not args.unit)
    print(f"wrote {path} ({len([l for l in direction.layers if l >= 1])} layers, model hint {direction.meta.get('model_type') or direction.model})")
    return 0
