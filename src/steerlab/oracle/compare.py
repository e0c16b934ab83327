"""Checking a vector: steered continuations, concept mentions, logit lens, mean-difference comparison.

    texts = steered_continuations(lm, layer, vector, strength=0.3, prompts=continuation_prompts())
    counts = {s: mention_count(t, concept_keywords("birds")) for s, t in texts.items()}
    lens = logit_lens(lm, vector, k=15)                 # tokens promoted / suppressed
    md = mean_diff_vector(oracle, "topic", "birds")     # [hidden] from the bundled sources
    compare_vectors(dreamed, md)                        # cosine and top-100 overlap

Steering goes through `steerlab.steering` (strength relative to the layer's mean residual
norm); the oracle never steers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import torch

from steerlab.errors import SteerlabError, unknown_name
from steerlab.models.loading import LoadedModel


def continuation_prompts() -> list[str]:
    """The 24 bundled open-ended prompts used to count concept mentions."""
    text = resources.files("steerlab.data").joinpath("bundled", "oracle", "continuation_prompts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["text"] for line in text.splitlines() if line.strip()]


def concept_keywords(concept: str) -> list[str]:
    """Keywords that count as mentioning a bundled concept; the error lists the concepts."""
    data = json.loads(resources.files("steerlab.data").joinpath("bundled", "oracle", "concepts.json").read_text(encoding="utf-8"))
    concepts = data["concepts"]
    for name, words in concepts.items():
        if name.lower() == concept.strip().lower():
            return list(words)
    raise unknown_name("concept", concept, list(concepts), hint="or pass --keywords word1,word2")


def mentions(text: str, keywords: Sequence[str]) -> bool:
    """Whether text holds one of the keywords as a word (or a word prefix, for plurals and -ing forms)."""
    pattern = r"\b(" + "|".join(re.escape(k.lower()) for k in keywords) + r")"
    return re.search(pattern, text.lower()) is not None


def mention_count(texts: Sequence[str], keywords: Sequence[str]) -> int:
    return sum(mentions(text, keywords) for text in texts)


def steered_continuations(
    lm: LoadedModel, layer: int, vector: torch.Tensor, strength: float, prompts: Sequence[str], max_new_tokens: int = 24
) -> dict[float, list[str]]:
    """Greedy continuations at strengths -s, 0, +s (relative to the layer's mean residual norm)."""
    from steerlab.steering import SteeringSpec, generate, relative_coef

    results: dict[float, list[str]] = {}
    for signed in (-strength, 0.0, strength):
        specs = [] if signed == 0.0 else [SteeringSpec(layer, vector.float(), relative_coef(lm, layer, vector, signed))]
        results[signed] = generate(lm, list(prompts), specs=specs, max_new_tokens=max_new_tokens)
    return results


@dataclass
class LensRow:
    token: str
    logit: float


def logit_lens(lm: LoadedModel, vector: torch.Tensor, k: int = 15) -> tuple[list[LensRow], list[LensRow]]:
    """Tokens a vector promotes and suppresses when read through the final norm's scale and the unembedding."""
    unembed = lm.model.get_output_embeddings()
    if unembed is None:
        raise SteerlabError(f"{lm.name} exposes no output embedding; the logit lens needs one")
    weight = unembed.weight.detach().float()  # [vocab, hidden]
    unit = vector.detach().float().to(weight.device)
    unit = unit / unit.norm().clamp_min(1e-8)
    scale = _final_norm_scale(lm)
    if scale is not None:
        unit = unit * scale.to(unit.device)
    logits = weight @ unit  # [vocab]
    top = torch.topk(logits, k)
    bottom = torch.topk(-logits, k)
    decode = lm.tokenizer.decode
    promoted = [LensRow(decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)]
    suppressed = [LensRow(decode([int(i)]), float(-v)) for v, i in zip(bottom.values, bottom.indices)]
    return promoted, suppressed


def _final_norm_scale(lm: LoadedModel) -> torch.Tensor | None:
    """The elementwise gain of the final RMSNorm, if the model has one (Gemma stores 1 + weight)."""
    body = getattr(lm.model, "model", None)
    norm = getattr(body, "norm", None) if body is not None else None
    weight = getattr(norm, "weight", None)
    if weight is None:
        return None
    weight = weight.detach().float()
    if "Gemma" in lm.architecture:
        return 1.0 + weight
    return weight


def mean_diff_vector(oracle, task_name: str, label: str, limit: int = 120) -> torch.Tensor:
    """Mean centered vector of the task's texts labelled `label` minus that of its other texts.  # [hidden]"""
    from steerlab.oracle.data import get_task, load_examples

    task = get_task(task_name)
    if label not in task.choices:
        raise SteerlabError(f"{label!r} is not a choice of task {task_name} ({', '.join(task.choices)})")
    examples = load_examples([task])
    chosen = [e.text for e in examples if e.label == label][:limit]
    others = [e.text for e in examples if e.label != label][:limit]
    return oracle.vectors_for(chosen).mean(0) - oracle.vectors_for(others).mean(0)


def task_for_answer(answer: str) -> tuple[str, str] | None:
    """The bundled (task, choice) whose choice is `answer`, if any."""
    from steerlab.oracle.data import TASKS

    for task in TASKS.values():
        for choice in task.choices:
            if choice.lower() == answer.strip().lower():
                return task.name, choice
    return None


def compare_vectors(a: torch.Tensor, b: torch.Tensor, top: int = 100) -> dict:
    """Cosine similarity and how many of each vector's `top` largest-magnitude components coincide."""
    a, b = a.float().flatten(), b.float().flatten()
    if a.shape != b.shape:
        raise SteerlabError(f"cannot compare vectors of sizes {a.numel()} and {b.numel()}")
    cosine = float(a @ b / (a.norm() * b.norm()).clamp_min(1e-12))
    top = min(top, a.numel())
    top_a = set(torch.topk(a.abs(), top).indices.tolist())
    top_b = set(torch.topk(b.abs(), top).indices.tolist())
    # two random subsets of size k out of n share k*k/n components on average
    return {"cosine": cosine, "top_k": top, "top_overlap": len(top_a & top_b), "chance_overlap": top * top / a.numel()}


def judge_concept(prompts: Sequence[str], continuations: Sequence[str], concept: str, judge_name: str = "local") -> float | None:
    """Mean judged score (0..100) of how much the continuations are about `concept`."""
    from steerlab.judges import get_judge

    judge = get_judge(judge_name)
    definition = f"The answer talks about {concept} or mentions {concept}."
    scores = judge.trait_batch(list(zip(prompts, continuations)), definition)
    valid = [s for s in scores if s is not None]
    return sum(valid) / len(valid) if valid else None
