"""`steerlab oracle train|ask|lens` and `steerlab dream`: activation oracles and dreamed vectors."""

from __future__ import annotations

import argparse
from pathlib import Path

from steerlab.cli.table import format_table
from steerlab.errors import SteerlabError
from steerlab.models import DEFAULT_MODEL, load_model


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def register(subparsers: argparse._SubParsersAction) -> None:
    oracle = subparsers.add_parser("oracle", help="train an activation oracle, ask it about a vector, read a vector's logit lens",
                                   description="Activation oracles read a residual vector injected at placeholder tokens and answer questions about it.")
    commands = oracle.add_subparsers(dest="oracle_command", metavar="SUBCOMMAND")

    train = commands.add_parser("train", help="train a LoRA (or linear-probe) oracle within a time budget",
                                description="Builds the training set from the bundled templated sources, trains, saves the adapter with a manifest and prints held-out accuracy per task next to chance.")
    train.add_argument("--model", default=DEFAULT_MODEL, help=f"base model (default {DEFAULT_MODEL})")
    train.add_argument("--layer", type=int, required=True, help="residual layer whose vectors the oracle reads")
    train.add_argument("--kind", default="lora", choices=["lora", "probe"], help="lora (default) or probe (linear probes, seconds)")
    train.add_argument("--tasks", default="all", help="all or comma-separated: topic,sentiment,language,gender (default all)")
    train.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget for the whole run (default 30)")
    train.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (default: only the budget)")
    train.add_argument("--batch-size", type=int, default=8, help="examples per step (default 8)")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the adapter (default 1e-3)")
    train.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    train.add_argument("--limit-per-task", type=int, default=None, help="use at most this many texts per task")
    train.add_argument("--holdout", type=float, default=0.2, help="held-out fraction (default 0.2)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split, adapter init and batches (default 0)")
    train.add_argument("--placeholder", default=" ?", help="placeholder string, must be one token (default ' ?')")
    train.add_argument("--inject-block", type=int, default=1, help="decoder block whose output gets the vector (default 1)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    train.add_argument("--out", required=True, help="output directory for the oracle")
    train.set_defaults(run=run_train)

    ask = commands.add_parser("ask", help="the oracle's probability of answers for a direction file",
                              description="Injects the direction's vector at the oracle's layer and prints the probability of each answer.")
    ask.add_argument("--oracle", required=True, help="oracle directory")
    ask.add_argument("--direction", required=True, help="steerlab direction .safetensors")
    ask.add_argument("--question", required=True, help="question to ask")
    ask.add_argument("--answers", required=True, help="comma-separated answers to score")
    ask.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ask.set_defaults(run=run_ask)

    lens = commands.add_parser("lens", help="tokens a direction promotes and suppresses through the unembedding",
                               description="Logit lens of a vector: final-norm gain times the unembedding, top and bottom tokens.")
    lens.add_argument("direction", help="steerlab direction .safetensors")
    lens.add_argument("--model", default=None, help="model (default: the one recorded in the direction file)")
    lens.add_argument("--layer", type=int, default=None, help="which of the file's layers (default: its default layer)")
    lens.add_argument("-k", type=int, default=15, help="tokens to list each way (default 15)")
    lens.set_defaults(run=run_lens)

    dream = subparsers.add_parser("dream", help="optimise a vector until the oracle says a concept is present (or red-team it)",
                                  description="AdamW from small noise on max(0, NLL - tau) + lambda_mag (||v||-1)^2 [+ lambda_mse MSE with --redteam]; saves the vector, loss curves, steered continuations and a comparison with the mean-difference vector.")
    dream.add_argument("--oracle", required=True, help="oracle directory (LoRA or probe)")
    dream.add_argument("--question", required=True, help="question put to the oracle")
    dream.add_argument("--answer", required=True, help="answer the vector must make the oracle give")
    dream.add_argument("--redteam", action="store_true", help="also minimise the final-layer MSE on neutral prompts; keep the lowest-MSE convinced vector")
    dream.add_argument("--steps", type=int, default=150, help="optimisation steps at most (default 150)")
    dream.add_argument("--lr", type=float, default=0.01, help="AdamW learning rate (default 0.01)")
    dream.add_argument("--tau", type=float, default=0.01, help="NLL margin (default 0.01)")
    dream.add_argument("--lambda-mag", type=float, default=5.0, help="weight of (||v||-1)^2 (default 5)")
    dream.add_argument("--lambda-mse", type=float, default=1.0, help="weight of the relative MSE with --redteam (default 1)")
    dream.add_argument("--strength", type=float, default=0.2, help="steering strength s, relative to the layer's mean residual norm (default 0.2)")
    dream.add_argument("--max-new-tokens", type=int, default=24, help="tokens per continuation (default 24)")
    dream.add_argument("--prompts", type=int, default=24, help="bundled continuation prompts to use, at most 24 (default 24)")
    dream.add_argument("--keywords", default=None, help="comma-separated words that count as mentioning the concept")
    dream.add_argument("--judge", default=None, help="judge backend for a judged steering effect (e.g. local); off by default")
    dream.add_argument("--no-compare", action="store_true", help="skip the mean-difference comparison")
    dream.add_argument("--seed", type=int, default=0, help="seed of the starting noise (default 0)")
    dream.add_argument("--init-scale", type=float, default=0.01, help="standard deviation of the starting noise (default 0.01)")
    dream.add_argument("--subspace", type=int, default=0, help="search only the span of this many principal components of generic token activations (default 0: the whole space)")
    dream.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    dream.add_argument("--out", required=True, help="output directory")
    dream.set_defaults(run=run_dream_cmd)


def run_train(args: argparse.Namespace) -> int:
    from steerlab.oracle.data import parse_tasks
    from steerlab.oracle.train import TrainConfig, train_lora_oracle, train_probe_oracle

    _threads(args)
    parse_tasks(args.tasks)  # fail on a bad name before loading anything
    lm = load_model(args.model)
    config = TrainConfig(
        layer=lm.check_layer(args.layer), tasks=args.tasks, minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size,
        lr=args.lr, rank=args.rank, holdout=args.holdout, seed=args.seed, limit_per_task=args.limit_per_task,
        placeholder=args.placeholder, inject_block=args.inject_block,
    )
    trainer = train_lora_oracle if args.kind == "lora" else train_probe_oracle
    oracle, report = trainer(lm, config)
    oracle.save(args.out)
    rows = [[r.task, r.n_held_out, r.accuracy, r.chance, r.untrained] for r in report.accuracy]
    print(format_table(["task", "held out", "accuracy", "chance", "untrained"], rows))
    loss = f", final loss {report.losses[-1]:.3f}" if report.losses else ""
    print(f"\n{args.kind} oracle on {lm.name} layer {args.layer}: {report.steps} steps, {report.n_train} train texts{loss}, "
          f"{report.seconds:.0f} s -> {args.out}")
    return 0


def run_ask(args: argparse.Namespace) -> int:
    import torch

    from steerlab.directions import Direction
    from steerlab.oracle.probe import load_oracle

    _threads(args)
    oracle = load_oracle(args.oracle)
    direction = Direction.load(args.direction)
    vector = direction.vector(oracle.layer)
    answers = [a.strip() for a in args.answers.split(",") if a.strip()]
    if not answers:
        raise SteerlabError("--answers is empty; pass e.g. --answers birds,food")
    with torch.no_grad():
        rows = [[answer, float(oracle.prob(vector, args.question, answer))] for answer in answers]
    print(format_table(["answer", "oracle probability"], rows))
    return 0


def run_lens(args: argparse.Namespace) -> int:
    from steerlab.directions import Direction
    from steerlab.oracle.compare import logit_lens

    direction = Direction.load(args.direction)
    lm = load_model(args.model or direction.model or DEFAULT_MODEL)
    layer = args.layer if args.layer is not None else direction.default_layer()
    promoted, suppressed = logit_lens(lm, direction.vector(layer), args.k)
    rows = [[repr(p.token), p.logit, repr(s.token), s.logit] for p, s in zip(promoted, suppressed)]
    print(format_table(["promoted", "logit", "suppressed", "logit"], rows))
    return 0


def run_dream_cmd(args: argparse.Namespace) -> int:
    from steerlab.oracle.dream import DreamConfig
    from steerlab.oracle.probe import load_oracle
    from steerlab.oracle.report import RunOptions, run_dream

    _threads(args)
    if not Path(args.oracle).is_dir():
        raise SteerlabError(f"--oracle {args.oracle}: no such directory; train one with `steerlab oracle train --layer L --out DIR`")
    oracle = load_oracle(args.oracle)
    config = DreamConfig(
        question=args.question, answer=args.answer, redteam=args.redteam, steps=args.steps, lr=args.lr, tau=args.tau,
        lambda_mag=args.lambda_mag, lambda_mse=args.lambda_mse, strength=args.strength, seed=args.seed,
        init_scale=args.init_scale, subspace=args.subspace,
    )
    keywords = [k.strip() for k in args.keywords.split(",") if k.strip()] if args.keywords else None
    options = RunOptions(out=args.out, strength=args.strength, max_new_tokens=args.max_new_tokens, n_prompts=args.prompts,
                         keywords=keywords, compare=not args.no_compare, judge=args.judge)
    report = run_dream(oracle, config, options, oracle_dir=args.oracle)
    status = "convinced" if report.converged else "NOT convinced"
    print(f"{'red-team ' if report.redteam else ''}dream {report.answer!r}: oracle p = {report.prob:.4f} ({status}) at step "
          f"{report.kept_step} of {report.steps_run}, relative final-layer MSE {report.mse:.4f}, {report.seconds:.0f} s")
    headers = ["vector", "strength", "mentions", "of"] + (["judged"] if args.judge else [])
    rows = [["dreamed", r.strength, r.mentions, r.n] + ([r.judged] if args.judge else []) for r in report.steering]
    if report.mean_diff:
        md = report.mean_diff
        rows += [["mean-diff", r["strength"], r["mentions"], r["n"]] + ([r["judged"]] if args.judge else []) for r in md["steering"]]
    print(format_table(headers, rows))
    if report.mean_diff:
        md = report.mean_diff
        print(f"mean-difference vector ({md['task']}): cosine {md['cosine']:.3f}, top-100 overlap {md['top_overlap']} "
              f"(chance {md['chance_overlap']:.1f}), oracle p {md['oracle_prob']:.4f}, relative MSE {md['mse']:.4f}")
    print("logit lens promotes:", " ".join(repr(t) for t in report.promoted))
    print("logit lens suppresses:", " ".join(repr(t) for t in report.suppressed))
    print(f"-> {args.out} ({', '.join(Path(p).name for p in report.files.values())})")
    return 0
