"""The `steerlab` command: a thin layer over the library.

Each command lives in its own module under steerlab/cli/ and exposes `register(subparsers)`,
which adds its parser and sets `run` to a function taking the parsed args. User errors
(SteerlabError) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from steerlab import __version__
from steerlab.errors import SteerlabError

# command modules, in the order `steerlab --help` lists them
COMMAND_MODULES = [
    "steerlab.cli.models_cmd",
    "steerlab.cli.extract_cmd",
    "steerlab.cli.steer_cmd",
    "steerlab.cli.eval_steering_cmd",
    "steerlab.cli.norms_cmd",
    "steerlab.cli.study_cmd",
    "steerlab.cli.arena_cmd",
    "steerlab.cli.oracle_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steerlab",
        description="Extract, audit, steer and play with steering vectors in language models.",
    )
    parser.add_argument("--version", action="version", version=f"steerlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        result = args.run(args)
    except SteerlabError as error:
        print(f"steerlab {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("steerlab: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
