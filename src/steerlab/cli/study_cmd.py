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

    sweep = subparsers.add_parser(
        "sweep",
        help="read-vs-steer layer sweep: held-out separation and judged steering delta per layer",
        description="Extract a direction at each layer, steer with it at each relative strength (one per-sample batch), judge, plot both over depth.",
    )
    sweep.add_argument("--model", default="gemma-3-270m", help="model (default gemma-3-270m)")
    sweep.add_argument("--pairs", default="human-values", help="pair set (default human-values)")
    sweep.add_argument("--layers", default="all", help="layers to sweep: all, 30%%-60%%, 2,4,6 (default all)")
    sweep.add_argument("--strengths", default="0.5,1,2", help="relative strengths, comma-separated (default 0.5,1,2)")
    sweep.add_argument("--method", default="logistic", help="estimator (default logistic)")
    sweep.add_argument("--remove", default="", help="confounds to project out, e.g. length,sentiment")
    sweep.add_argument("--trait", default="human-values", help="bundled trait the judge scores (default human-values)")
    sweep.add_argument("--judge", default="local", help="judge backend: local, openai, anthropic (default local)")
    sweep.add_argument("--subset", type=int, default=5, help="questions per (layer, strength) (default 5)")
    sweep.add_argument("--max-new-tokens", type=int, default=None, help="tokens per answer (default 64 chat, 16 base)")
    sweep.add_argument("--min-coherence", type=float, default=77.0, help="a steering run is valid at or above this mean coherence (default 77)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default 0)")
    sweep.add_argument("--out", default=None, help="output folder (default experiments/sweep/<model>)")
    sweep.set_defaults(run=run_sweep_cmd)

    transfer = subparsers.add_parser(
        "transfer",
        help="cross-model transfer: score entries on several models with independently extracted directions",
        description="Extract a direction per model from the same pairs, score every entry on every model, compare groups.",
    )
    transfer.add_argument("--entries", default="arena-entries", help="arena export (.jsonl/.csv), text file (one entry a line) or bundled set (default arena-entries)")
    transfer.add_argument("--models", default="gemma-3-270m,smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct", help="comma-separated models; the first is the reference (default: the three packaged models)")
    transfer.add_argument("--pairs", default="human-values", help="pair set for every model's direction (default human-values)")
    transfer.add_argument("--method", default="logistic", help="estimator (default logistic)")
    transfer.add_argument("--depth", type=float, default=0.4, help="relative depth of the layer on every model (default 0.4)")
    transfer.add_argument("--layers", default="", help="explicit layers per model, e.g. gemma-3-270m:7,smollm2-135m-instruct:12")
    transfer.add_argument("--remove", default="", help="confounds to project out, e.g. length,sentiment")
    transfer.add_argument("--top-k", type=int, default=None, help="entries per group (default a third of the entries)")
    transfer.add_argument("--out", default="experiments/transfer", help="output folder (default experiments/transfer)")
    transfer.set_defaults(run=run_transfer_cmd)

    report = subparsers.add_parser(
        "report",
        help="gather every study found into one self-contained HTML page with plots",
        description="Embed the newest audit, sweep, transfer and judge-ab results and set them beside the source write-up's claims.",
    )
    report.add_argument("--direction", default=None, help="direction file whose .studies folder is searched first")
    report.add_argument("--studies", default="experiments", help="comma-separated folders searched recursively for study JSON (default experiments)")
    report.add_argument("--out", default="report.html", help="output HTML file (default report.html)")
    report.set_defaults(run=run_report_cmd)

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


def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    from steerlab.errors import SteerlabError

    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SteerlabError(f"{flag} {text!r}: write numbers separated by commas, e.g. 0.5,1,2") from None
    if not values:
        raise SteerlabError(f"{flag} is empty; write numbers separated by commas, e.g. 0.5,1,2")
    return values


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from steerlab.studies.sweep import run_sweep, write_sweep

    strengths = parse_floats(args.strengths, "--strengths")
    remove = tuple(name.strip() for name in args.remove.split(",") if name.strip())
    lm = load_model(args.model)
    out_dir = args.out or f"experiments/sweep/{lm.name.replace('/', '_')}"
    result = run_sweep(
        lm, args.pairs, out_dir, layers=args.layers, strengths=strengths, method=args.method, remove=remove,
        trait_name=args.trait, judge_name=args.judge, subset=args.subset, max_new_tokens=args.max_new_tokens,
        min_coherence=args.min_coherence, seed=args.seed,
    )
    paths = write_sweep(result, out_dir)
    rows = []
    for row in result.rows:
        cells = [row["layer"], row["accuracy"], row["auroc"]]
        for strength in result.strengths:
            match = next((w for w in row["writing"] if abs(abs(w["strength"]) - abs(strength)) < 1e-3), None)
            cells.append("-" if match is None or match["delta"] is None else f"{match['delta']:+.1f}{'' if match['valid'] else '*'}")
        rows.append(cells)
    headers = ["layer", "held-out acc", "AUROC"] + [f"delta @{s:g}" for s in result.strengths]
    print(format_table(headers, rows))
    baseline = "-" if result.baseline_trait is None else f"{result.baseline_trait:.1f}"
    print(f"\n* coherence below {result.min_coherence:g} (invalid). Baseline trait {baseline}, "
          f"best reading layer {result.best_reading_layer}, best steering layer {result.best_steering_layer}.")
    print(f"wrote {', '.join(str(p) for p in paths)} (runs in {result.results_file})")
    return 0


def run_transfer_cmd(args: argparse.Namespace) -> int:
    from steerlab.errors import SteerlabError
    from steerlab.studies.transfer import load_entry_texts, run_transfer, write_transfer

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    layers = {}
    for item in filter(None, (part.strip() for part in args.layers.split(","))):
        name, _, layer = item.rpartition(":")
        if not name or not layer.lstrip("-").isdigit():
            raise SteerlabError(f"--layers item {item!r}: write MODEL:LAYER, e.g. gemma-3-270m:7")
        layers[name] = int(layer)
    remove = tuple(name.strip() for name in args.remove.split(",") if name.strip())
    entries = load_entry_texts(args.entries)
    result = run_transfer(entries, models, pairs_name=args.pairs, method=args.method, depth=args.depth, layers=layers, remove=remove, top_k=args.top_k, entries_source=str(args.entries))
    paths = write_transfer(result, args.out)
    pair_names = list(result.overall_spearman)
    rows = [[group, info["n"], info["sign_agreement"], *[info["spearman"][p] for p in pair_names]] for group, info in result.groups.items()]
    rows.append(["all entries", len(result.entries), None, *[result.overall_spearman[p] for p in pair_names]])
    print(format_table(["group", "n", "sign agrees", *[f"rho {p}" for p in pair_names]], rows))
    print(f"\nlayers: {', '.join(f'{m} L{l}' for m, l in result.layers.items())}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def run_report_cmd(args: argparse.Namespace) -> int:
    from steerlab.studies.report import write_report

    folders = [part.strip() for part in args.studies.split(",") if part.strip()]
    path = write_report(args.direction, folders, args.out)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB); open it in a browser")
    return 0
