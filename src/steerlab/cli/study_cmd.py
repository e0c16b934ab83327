"""Study commands: `steerlab audit` (and the other studies), each writing JSON + PNG + a table."""

from __future__ import annotations

import argparse

from steerlab.cli.table import format_table
from steerlab.directions import Direction
from steerlab.models import load_model
from steerlab.studies.common import default_studies_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="confound audit of a direction: confound cosines, value-flip controls, estimator agreement",
        description="Read-only checks of what a direction correlates with, with flags and an assessment.",
    )
    audit.add_argument("direction", help="steerlab .safetensors direction file")
    audit.add_argument("--layer", type=int, default=None, help="layer to audit (default: the direction's default layer, 40%% depth)")
    audit.add_argument("--pairs", default=None, help="training pairs (default: the set recorded in the direction)")
    audit.add_argument("--model", default=None, help="model (default: the one recorded in the direction)")
    audit.add_argument("--seed", type=int, default=0, help="seed for the probes (default 0)")
    audit.add_argument("--out", default=None, help="output folder (default: <direction>.studies/ next to the file)")
    audit.set_defaults(run=run_audit_cmd)


def run_audit_cmd(args: argparse.Namespace) -> int:
    from steerlab.studies.audit import run_audit, write_audit

    direction = Direction.load(args.direction)
    lm = load_model(args.model or direction.model)
    result = run_audit(lm, direction, args.direction, layer=args.layer, pairs_name=args.pairs, seed=args.seed)
    out_dir = args.out or default_studies_dir(args.direction)
    paths = write_audit(result, out_dir)
    rows = [[f["check"], f["value"], f["level"], f["rule"]] for f in result.flags]
    print(format_table(["check", "value", "flag", "rule"], rows))
    print("\n" + result.assessment)
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
