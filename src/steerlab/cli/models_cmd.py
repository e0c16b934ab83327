"""`steerlab models list`: the packaged models and whether they are installed and converted."""

from __future__ import annotations

import argparse

from steerlab.cli.table import format_table
from steerlab.models import MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the packaged models", description="Show the models steerlab knows by name.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="table of packaged models: architecture, layers, hidden size, installed, cached")
    listing.set_defaults(run=run_list)
    parser.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    rows = [
        [spec.name + (" (default)" if i == 0 else ""), spec.architecture, spec.n_layers, spec.hidden_size, spec.installed(), spec.cached()]
        for i, spec in enumerate(MODELS.values())
    ]
    print(format_table(["name", "architecture", "layers", "hidden", "installed", "cached"], rows))
    print("\nAlso accepted: a local model folder, a .gguf file, or a Hugging Face id (org/name).")
    return 0
