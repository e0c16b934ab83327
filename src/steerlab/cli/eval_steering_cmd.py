"""`steerlab eval-steering`: does steering along a direction change the judged trait?

    steerlab eval-steering --model smollm2-135m-instruct --direction hv.safetensors \
        --trait human-values --experiment demo --layers 8,10 --search-steps 3

Results go to experiments/{experiment}/steering/{trait}/{model}/{vector}/{direction}/results.jsonl
(append-only; rerunning the same command skips finished work) with a trait-vs-coherence PNG.
"""

from __future__ import annotations

import argparse

from steerlab.errors import SteerlabError
from steerlab.evaluation import EvalConfig, best_table, evaluate_steering, runs_table
from steerlab.judges import DEFAULT_JUDGE, JUDGES, bundled_traits, get_judge, load_trait
from steerlab.models import DEFAULT_MODEL, load_model
from steerlab.steering import POSITIONS


def _floats(text: str | None, flag: str) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SteerlabError(f"{flag} {text!r}: use comma-separated numbers such as 2,4,8") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-steering",
        help="adaptive coefficient search: steer, judge trait and coherence, keep the best valid run",
        description="Steer along a direction at several layers, judge trait and coherence, and report the best valid run.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model to steer (default {DEFAULT_MODEL})")
    p.add_argument("--direction", action="append", required=True,
                   help="steerlab .safetensors direction file; given again as positive|negative it sets the steering sign")
    p.add_argument("--trait", required=True, help=f"bundled trait ({', '.join(bundled_traits())}) or a trait .json file")
    p.add_argument("--experiment", required=True, help="experiment name (results under <results-root>/<experiment>/steering/)")
    p.add_argument("--layers", default="30%-60%", help="layer spec: 30%%-60%% (default), 4,6,8, 4-8 or all")
    p.add_argument("--steer-direction", dest="sign", default=None, choices=("positive", "negative"),
                   help="positive raises the trait, negative lowers it (default: the trait file's direction); same as --direction positive|negative")
    p.add_argument("--coefficients", default=None, help="absolute coefficients a,b,c: a grid instead of the search")
    p.add_argument("--strengths", default=None, help="relative strengths a,b,c (x mean residual norm): a grid instead of the search")
    p.add_argument("--search-steps", type=int, default=5, help="search iterations (default 5)")
    p.add_argument("--start-mult", type=float, default=0.7, help="start at this fraction of each layer's base coefficient (default 0.7)")
    p.add_argument("--up-mult", type=float, default=1.3, help="multiplier when coherence is high enough (default 1.3)")
    p.add_argument("--down-mult", type=float, default=0.85, help="multiplier when coherence is too low (default 0.85)")
    p.add_argument("--momentum", type=float, default=0.1, help="inertia of the multiplier, 0 = none (default 0.1)")
    p.add_argument("--min-coherence", type=float, default=77.0, help="a run is valid at this mean coherence or above (default 77)")
    p.add_argument("--subset", type=int, default=5, help="questions per evaluation (default 5)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="answer length (default 64, 16 for base models)")
    p.add_argument("--positions", default="all", choices=POSITIONS, help="tokens to steer (default all)")
    p.add_argument("--save-responses", default="best", choices=("all", "best", "none"), help="store answers of every run, the best only, or none (default best)")
    p.add_argument("--baseline-only", action="store_true", help="judge unsteered answers only")
    p.add_argument("--force", action="store_true", help="start over (the old results file is moved aside, not deleted)")
    p.add_argument("--rescore", action="store_true", help="re-judge stored answers with the current judge, without generating")
    p.add_argument("--judge", default=DEFAULT_JUDGE, help=f"judge backend: {', '.join(JUDGES)} (default {DEFAULT_JUDGE})")
    p.add_argument("--judge-model", default=None, help="judge model (local: registry name, default qwen2.5-coder-0.5b-instruct; HTTP: model id)")
    p.add_argument("--results-root", default="experiments", help="root folder of experiments (default experiments)")
    p.add_argument("--generation-batch", type=int, default=None, help="rows per generate call (default: a whole step at once)")
    p.set_defaults(run=run_eval)


def split_direction_args(values: list[str], sign: str | None) -> tuple[str, str | None]:
    """--direction FILE [--direction positive|negative]: the file and the sign."""
    signs = [v for v in values if v in ("positive", "negative")]
    files = [v for v in values if v not in ("positive", "negative")]
    if len(files) != 1:
        raise SteerlabError(f"--direction needs exactly one direction file (got {files or 'none'}); add positive|negative as a second --direction")
    chosen = set(signs + ([sign] if sign else []))
    if len(chosen) > 1:
        raise SteerlabError(f"conflicting steering directions {sorted(chosen)}; pass one of positive or negative")
    return files[0], (chosen.pop() if chosen else None)


def run_eval(args: argparse.Namespace) -> int:
    direction_file, sign = split_direction_args(args.direction, args.sign)
    trait = load_trait(args.trait)
    if args.judge not in JUDGES:
        get_judge(args.judge)  # raises the listing error before loading models
    config = EvalConfig(
        experiment=args.experiment,
        layers=args.layers,
        direction=sign or trait.direction,
        coefficients=_floats(args.coefficients, "--coefficients"),
        strengths=_floats(args.strengths, "--strengths"),
        search_steps=args.search_steps,
        start_mult=args.start_mult,
        up_mult=args.up_mult,
        down_mult=args.down_mult,
        momentum=args.momentum,
        min_coherence=args.min_coherence,
        subset=args.subset,
        max_new_tokens=args.max_new_tokens,
        positions=args.positions,
        save_responses=args.save_responses,
        baseline_only=args.baseline_only,
        force=args.force,
        rescore=args.rescore,
        results_root=args.results_root,
        generation_batch=args.generation_batch,
    )
    lm = load_model(args.model)
    judge = get_judge(args.judge, args.judge_model)
    summary = evaluate_steering(lm, direction_file, trait, judge, config)
    base = summary.baseline
    print(f"\nbaseline: trait {base['trait_mean']:.1f}, coherence {base['coherence_mean']:.1f} ({len(base['per_question'])} questions)"
          if base.get("trait_mean") is not None and base.get("coherence_mean") is not None else "\nbaseline: judge gave no valid scores")
    if summary.runs:
        print("\nall runs:")
        print(runs_table(summary.runs))
        print("\nbest per layer (valid runs only):")
        print(best_table(summary.best_per_layer) if summary.best_per_layer else f"(no run reached coherence {config.min_coherence:g})")
    best = summary.best
    if best is not None:
        print(f"\nbest valid run: layer {best['layer']}, coef {best['coef']:.4g} (strength {best['strength']:.3g}), "
              f"trait {best['trait_mean']:.1f}, coherence {best['coherence_mean']:.1f}, delta {best['delta']:+.1f}")
    elif not config.baseline_only:
        print(f"\nno valid run: no configuration kept mean coherence >= {config.min_coherence:g}")
    print(f"generated {summary.generated_rows} answers in this call; results: {summary.path}")
    if summary.plot:
        print(f"plot: {summary.plot}")
    return 0
