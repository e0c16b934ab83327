"""`steerlab steer`: baseline and steered continuations of one prompt, side by side.

    steerlab steer --model smollm2-135m-instruct --direction hv.safetensors --layer 10 --strength 0.5 \
        --prompt "What should I do with a lost wallet?"
"""

from __future__ import annotations

import argparse
import textwrap

from steerlab.directions import Direction
from steerlab.errors import SteerlabError
from steerlab.evaluation import layer_vectors
from steerlab.models import DEFAULT_MODEL, load_model
from steerlab.steering import MODES, POSITIONS, SteeringSpec, generate, relative_coef, strength_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "steer",
        help="print baseline and steered continuations of a prompt side by side",
        description="Greedy generation with and without adding strength x mean-residual-norm x unit direction at one layer.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"packaged model name, folder or hub id (default {DEFAULT_MODEL})")
    parser.add_argument("--direction", required=True, help="steerlab .safetensors direction file")
    parser.add_argument("--layer", type=int, default=None, help="layer to steer (default: the direction's default layer)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--strength", type=float, default=None, help="relative strength: coef = S x mean residual norm / ||d|| (default 0.5; negative flips)")
    group.add_argument("--coef", type=float, default=None, help="absolute coefficient instead of a relative strength")
    parser.add_argument("--mode", default="add", choices=MODES, help="add the direction, or ablate (project it out) (default add)")
    parser.add_argument("--positions", default="all", choices=POSITIONS, help="which tokens to steer (default all)")
    parser.add_argument("--prompt", action="append", required=True, help="prompt text (repeat for several)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tokens to generate (default 48)")
    parser.add_argument("--raw", action="store_true", help="do not apply the chat template of instruct models")
    parser.add_argument("--width", type=int, default=48, help="column width of the side-by-side view (default 48)")
    parser.set_defaults(run=run_steer)


def side_by_side(left: str, right: str, width: int, titles: tuple[str, str]) -> str:
    def wrap(text: str) -> list[str]:
        lines = []
        for paragraph in (text.strip() or "(empty)").splitlines() or [""]:
            lines.extend(textwrap.wrap(paragraph, width) or [""])
        return lines

    a, b = wrap(left), wrap(right)
    out = [f"{titles[0]:<{width}} | {titles[1]}", f"{'-' * width}-+-{'-' * width}"]
    for i in range(max(len(a), len(b))):
        out.append(f"{(a[i] if i < len(a) else ''):<{width}} | {b[i] if i < len(b) else ''}".rstrip())
    return "\n".join(out)


def run_steer(args: argparse.Namespace) -> int:
    direction = Direction.load(args.direction)
    lm = load_model(args.model)
    if direction.hidden_size != lm.hidden_size:
        raise SteerlabError(f"{args.direction} has hidden size {direction.hidden_size}, {lm.name} has {lm.hidden_size}; use a direction from this model")
    layer = lm.check_layer(args.layer if args.layer is not None else direction.default_layer())
    vector = layer_vectors(direction, [layer])[layer]
    if args.coef is not None:
        coef, strength = args.coef, strength_of(lm, layer, vector, args.coef)
    else:
        strength = 0.5 if args.strength is None else args.strength
        coef = relative_coef(lm, layer, vector, strength)
    spec = SteeringSpec(layer, vector, coef, mode=args.mode, positions=args.positions)
    chat = False if args.raw else None
    baseline = generate(lm, args.prompt, max_new_tokens=args.max_new_tokens, chat=chat)
    steered = generate(lm, args.prompt, specs=[spec], max_new_tokens=args.max_new_tokens, chat=chat)
    what = f"{args.mode} L{layer} strength {strength:+.3g} (coef {coef:+.4g})"
    for prompt, base_text, steer_text in zip(args.prompt, baseline, steered):
        print(f"prompt: {prompt}")
        print(side_by_side(base_text, steer_text, args.width, ("baseline", what)))
        print("identical" if base_text == steer_text else "different", "\n")
    return 0
