"""Benchmark: steering overhead and per-sample batching, measured side by side in one run.

    .venv/bin/python benchmarks/steering.py --model smollm2-135m-instruct --repeats 3

1. Steered vs unsteered greedy generation on the same prompts (goal: overhead under 5%).
2. K per-sample configs in one batch vs the same K configs run one after another
   (goal: at least 2x faster at K=8).
Runs are interleaved (A, B, A, B, ...) and the median is reported, so a machine shared with
other jobs slows both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from steerlab.models import load_model
from steerlab.steering import SteeringSpec, generate_ids, relative_coef, steer

QUESTIONS = [
    "I found a wallet on the street. What should I do?",
    "How do I make a good cup of tea?",
    "What is a good way to spend a rainy Sunday?",
    "My friend forgot my birthday. How should I react?",
    "Can you explain how a bicycle gear works?",
    "What should I bring to a picnic?",
    "How do I apologise to a neighbour for a noisy party?",
    "What is the best way to learn a new language?",
]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="packaged model (default smollm2-135m-instruct)")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per side (default 3)")
    parser.add_argument("--k", type=int, default=8, help="per-sample configs (default 8)")
    parser.add_argument("--questions", type=int, default=3, help="questions per config in the K comparison (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    layer = lm.n_layers // 3
    vector = torch.randn(lm.hidden_size, generator=torch.Generator().manual_seed(0))
    vector = vector / vector.norm()
    spec = SteeringSpec(layer, vector, relative_coef(lm, layer, vector, 0.3))
    prompts = QUESTIONS
    generate_ids(lm, prompts[:2], max_new_tokens=2)  # warm up

    # 1. overhead of the hook. Steered rows may stop at other lengths than unsteered ones, so the rate is
    # counted in token slots actually decoded (batch x longest row: generate runs until every row ends)
    def slots(rows: list[list[int]]) -> int:
        return len(rows) * max(len(r) for r in rows)

    plain_times, steered_times, plain_slots, steered_slots = [], [], 0, 0
    for _ in range(args.repeats):
        out: list = []
        plain_times.append(timed(lambda: out.append(generate_ids(lm, prompts, max_new_tokens=args.tokens))))
        plain_slots = slots(out[-1])
        steered_times.append(timed(lambda: out.append(generate_ids(lm, prompts, specs=[spec], max_new_tokens=args.tokens))))
        steered_slots = slots(out[-1])
    plain_rate = plain_slots / statistics.median(plain_times)
    steered_rate = steered_slots / statistics.median(steered_times)
    zero = SteeringSpec(layer, vector, 0.0)
    zero_times, ref_times = [], []
    for _ in range(args.repeats):  # strength 0: identical work on both sides, isolates the hook cost
        ref_times.append(timed(lambda: generate_ids(lm, prompts, max_new_tokens=args.tokens)))
        zero_times.append(timed(lambda: generate_ids(lm, prompts, specs=[zero], max_new_tokens=args.tokens)))
    hook_overhead = statistics.median(zero_times) / statistics.median(ref_times) - 1

    # 1b. the hook alone, on many short interleaved forward passes (less exposed to a busy machine)
    encoded = lm.tokenizer([lm.chat_prompt(p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False)
    forward_plain, forward_steered = [], []
    with torch.inference_mode():
        for _ in range(10 * args.repeats):
            forward_plain.append(timed(lambda: lm.model(**encoded, use_cache=False, logits_to_keep=1)))
            with steer(lm, [spec]):
                forward_steered.append(timed(lambda: lm.model(**encoded, use_cache=False, logits_to_keep=1)))
    forward_overhead = statistics.median(forward_steered) / statistics.median(forward_plain) - 1

    # 2. K configs in one per-sample batch vs K sequential runs
    questions = QUESTIONS[: args.questions]
    configs = [[SteeringSpec(layer, vector, relative_coef(lm, layer, vector, 0.05 * (i + 1)))] for i in range(args.k)]
    batch_rows = [q for _ in configs for q in questions]
    per_row = [c for c in configs for _ in questions]
    batched_times, sequential_times = [], []
    for _ in range(args.repeats):
        batched = []
        batched_times.append(timed(lambda: batched.extend(generate_ids(lm, batch_rows, per_row=per_row, max_new_tokens=args.tokens))))
        sequential = []
        sequential_times.append(
            timed(lambda: [sequential.extend(generate_ids(lm, questions, specs=c, max_new_tokens=args.tokens)) for c in configs])
        )
    same = batched == sequential
    speedup = statistics.median(sequential_times) / statistics.median(batched_times)

    print(f"model {lm.name}, layer {layer}, {len(prompts)} prompts x {args.tokens} new tokens, {args.repeats} interleaved repeats, "
          f"{torch.get_num_threads()} torch thread(s)")
    print(f"unsteered generation:  {plain_rate:8.1f} tokens/s (median {statistics.median(plain_times):.2f} s)")
    print(f"steered generation:    {steered_rate:8.1f} tokens/s (median {statistics.median(steered_times):.2f} s)")
    print(f"throughput overhead:   {100 * (plain_rate / steered_rate - 1):+.1f}%  (steered vs unsteered, tokens/s; goal < 5%)")
    print(f"hook overhead at strength 0 (identical tokens, wall time): {100 * hook_overhead:+.1f}%")
    print(f"hook overhead on {len(forward_plain)} interleaved forward passes ({encoded['input_ids'].shape[1]} tokens x {len(prompts)} rows): "
          f"{100 * forward_overhead:+.1f}% (median {1000 * statistics.median(forward_plain):.0f} ms vs {1000 * statistics.median(forward_steered):.0f} ms)")
    print(f"K={args.k} configs x {len(questions)} questions: one per-sample batch {statistics.median(batched_times):.2f} s, "
          f"{args.k} sequential runs {statistics.median(sequential_times):.2f} s -> {speedup:.2f}x (goal >= 2x); "
          f"outputs identical: {same}")


if __name__ == "__main__":
    main()
