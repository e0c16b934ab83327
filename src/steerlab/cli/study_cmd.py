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

    judge = subparsers.add_parser(
        "judge-ab",
        help="A/B-swapped model-as-judge: which continuation shows more of a trait, in both orders",
        description="Ask the model which side of each pair is kinder (or another trait) in both orders; keep consistent verdicts.",
    )
    judge.add_argument("--model", default="gemma-3-270m", help="judging model (default gemma-3-270m)")
    judge.add_argument("--pairs", default="value-flip", help="pairs whose chosen side is the known answer (default value-flip)")
    judge.add_argument("--trait", default="kinder", help="comparative adjective in the question (default kinder)")
    judge.add_argument("--min-mass", type=float, default=0.2, help="abstain when P(A)+P(B) is below this (default 0.2)")
    judge.add_argument("--min-margin", type=float, default=0.1, help="abstain when |P(A)-P(B)|/(P(A)+P(B)) is below this (default 0.1)")
    judge.add_argument("--out", default=None, help="output folder (default experiments/judge-ab/<model>)")
    judge.set_defaults(run=run_judge_ab_cmd)


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


def run_judge_ab_cmd(args: argparse.Namespace) -> int:
    from steerlab.data import load_pairs
    from steerlab.studies.judge_ab import run_judge_ab, write_judge_ab

    pairs = load_pairs(args.pairs)
    lm = load_model(args.model)
    result = run_judge_ab(lm, pairs, trait=args.trait, min_mass=args.min_mass, min_margin=args.min_margin, data_name=str(args.pairs))
    out_dir = args.out or f"experiments/judge-ab/{lm.name.replace('/', '_')}"
    paths = write_judge_ab(result, out_dir)
    rows = [
        ["pairs", result.n_pairs],
        ["abstain rate", result.abstain_rate],
        ["contradiction rate", result.contradiction_rate],
        ["consistent verdicts", result.consistent],
        ["agreement with label (consistent)", result.agreement],
        ["sign-test p-value", result.sign_test_p],
        ["share of 'A' answers (position bias)", result.position_bias_a],
    ]
    print(format_table(["measure", "value"], rows))
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
