"""`steerlab arena score|serve|export`: score a text, run the web arena, export its entries."""

from __future__ import annotations

import argparse
import json
import os

from steerlab.cli.table import format_table
from steerlab.errors import SteerlabError

DEFAULT_DB = "sqlite:///arena.db"


def _add_scorer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direction", required=True, help="steerlab .safetensors direction file")
    parser.add_argument("--model", default=None, help="model to score on (default: the one recorded in the direction)")
    parser.add_argument("--layer", type=int, default=None,
                        help="layer to read (default: the direction's default layer, 40%% depth; 7 for gemma-3-270m)")
    parser.add_argument("--probes", default="neutral-probes", help="bundled text set or .jsonl of probe prompts (default neutral-probes)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one scoring pass may take (default 60)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("arena", help="score texts against a direction and serve the public arena",
                                   description="The steering arena: submitted texts ranked by how far they move the model along a direction.")
    commands = parser.add_subparsers(dest="arena_command", metavar="ARENA_COMMAND")
    parser.set_defaults(run=lambda _args: parser.print_help() or 2)

    score = commands.add_parser("score", help="score one text and print score, spec_z and per-probe shifts",
                                description="Prepend TEXT to every probe, read the last token at the layer, report the cosine shifts along the direction.")
    score.add_argument("text", help="the text to score")
    _add_scorer_options(score)
    score.add_argument("--json", action="store_true", help="print the result as JSON")
    score.set_defaults(run=run_score)

    serve = commands.add_parser("serve", help="run the arena web service (FastAPI + uvicorn)",
                                description="Serve the submit form, the two boards, the entry pages and the JSON API (/docs).")
    _add_scorer_options(serve)
    serve.add_argument("--db", default=DEFAULT_DB, help=f"database URL: sqlite:///FILE or postgresql://... (default {DEFAULT_DB})")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--redis", default=None, help="redis://HOST:PORT/DB to share rate-limit counters between processes (default: in memory)")
    serve.add_argument("--max-chars", type=int, default=300, help="characters per submission (default 300)")
    serve.add_argument("--max-tokens", type=int, default=64, help="tokens per submission (default 64)")
    serve.add_argument("--per-minute", type=int, default=10, help="submissions per client per minute, 0 = no limit (default 10)")
    serve.add_argument("--per-day", type=int, default=200, help="submissions per client per day, 0 = no limit (default 200)")
    serve.add_argument("--global-per-day", type=int, default=20000, help="submissions per day in all, 0 = no limit (default 20000)")
    serve.add_argument("--queue-size", type=int, default=64, help="pending entries before new ones get 503 (default 64)")
    serve.add_argument("--wait", type=float, default=10.0, help="seconds a POST waits for its score before answering 202 (default 10)")
    serve.add_argument("--season-name", default=None, help="name of a new season (default 'season N')")
    serve.add_argument("--trust-forwarded", action="store_true", help="take client addresses from X-Forwarded-For (only behind a proxy)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    serve.set_defaults(run=run_serve)

    export = commands.add_parser("export", help="write the entries to .jsonl or .csv for analysis",
                                 description="Export entries with text, handle, score, spec_z, season, model and layer.")
    export.add_argument("--db", default=DEFAULT_DB, help=f"database URL (default {DEFAULT_DB})")
    export.add_argument("--out", required=True, help="output file, .jsonl or .csv")
    export.add_argument("--season", type=int, default=None, help="only this season id (default all)")
    export.add_argument("--include-hidden", action="store_true", help="also export entries hidden by moderators")
    export.add_argument("--scored-only", action="store_true", help="leave out pending and failed entries")
    export.set_defaults(run=run_export)


def build_scorer(args: argparse.Namespace):
    from steerlab.arena import ArenaScorer
    from steerlab.directions import Direction
    from steerlab.models import load_model

    direction = Direction.load(args.direction)
    model_name = args.model or direction.model
    if not model_name:
        raise SteerlabError(f"{args.direction} records no model; pass --model")
    lm = load_model(model_name)
    return ArenaScorer(lm, direction, layer=args.layer, probes=args.probes, timeout=args.timeout)


def run_score(args: argparse.Namespace) -> int:
    from steerlab.arena.scoring import probe_table

    scorer = build_scorer(args)
    result = scorer.score(args.text)
    if args.json:
        data = result.to_dict()
        data.update(model=scorer.model_name, probe_set=scorer.probe_set, probes=scorer.probes)
        print(json.dumps(data, indent=2))
        return 0
    rows = [[i + 1, row.probe[:60], f"{row.baseline_cos:+.6f}", f"{row.shift:+.6f}"] for i, row in enumerate(probe_table(scorer, result))]
    print(format_table(["#", "probe", "cos(probe, d)", "shift"], rows))
    print(f"\nscore {result.score:+.6f}  spec_z {result.spec_z:+.4f}  coherence {result.coherence:.3f}  "
          f"({scorer.model_name}, layer {scorer.layer}, {len(scorer.probes)} probes, {result.n_tokens} tokens, {result.seconds:.2f} s)")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from steerlab.arena.app import create_app
    from steerlab.arena.limits import RateConfig
    from steerlab.arena.service import ArenaConfig
    from steerlab.arena.storage import ArenaStore
    from steerlab.arena.validation import Limits

    store = ArenaStore(args.db)  # migrate first: a bad URL fails before the model loads
    scorer = build_scorer(args)
    config = ArenaConfig(
        limits=Limits(max_chars=args.max_chars, max_tokens=args.max_tokens),
        rates=RateConfig(per_minute=args.per_minute, per_day=args.per_day, global_per_day=args.global_per_day),
        redis_url=args.redis,
        queue_size=args.queue_size,
        wait_seconds=args.wait,
        trust_forwarded=args.trust_forwarded,
        season_name=args.season_name,
    )
    app = create_app(scorer, store, config)
    service = app.state.service
    admin = "on" if service.admin_token else "off (set STEERLAB_ARENA_ADMIN_TOKEN)"
    print(f"arena {service.season.name}: {scorer.model_name} layer {scorer.layer}, {len(scorer.probes)} probes, "
          f"db {store.url}, admin {admin}; serving http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.log_level == "debug")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from steerlab.arena import ArenaStore, export_entries

    from steerlab.arena.storage import normalize_url

    url = normalize_url(args.db)
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
        raise SteerlabError(f"database file not found: {args.db}; pass --db sqlite:///FILE or a postgresql:// URL")
    store = ArenaStore(url)
    count = export_entries(store, args.out, season=args.season, include_hidden=args.include_hidden, scored_only=args.scored_only)
    print(f"wrote {count} entries to {args.out}")
    return 0
