"""Judges: score answers for a trait (0..100) and for coherence (0..100), by name from a registry.

    from steerlab.judges import get_judge, load_trait
    judge = get_judge("local")               # offline, in-process instruct model
    trait = load_trait("human-values")
    judge.trait(trait.questions[0], "I would own up and replace the mug.", trait.definition())

Backends: "local" (default), "openai" (any OpenAI-compatible endpoint, top logprobs),
"anthropic" (sampled scores). See steerlab/judges/base.py for the protocol and prompts.
"""

from __future__ import annotations

from typing import Callable

from steerlab.errors import unknown_name
from steerlab.judges.base import (
    Aggregate,
    Judge,
    PromptJudge,
    combine_coherence,
    digit_score,
    logprobs_to_probs,
    sampled_score,
    sampled_yes,
    yes_probability,
)
from steerlab.judges.traits import Trait, bundled_traits, load_trait, parse_trait

DEFAULT_JUDGE = "local"


def _local(model: str | None) -> PromptJudge:
    from steerlab.judges.local import LocalJudge

    return LocalJudge(model)


def _openai(model: str | None) -> PromptJudge:
    from steerlab.judges.http import OpenAIJudge

    return OpenAIJudge(model)


def _anthropic(model: str | None) -> PromptJudge:
    from steerlab.judges.http import AnthropicJudge

    return AnthropicJudge(model)


JUDGES: dict[str, Callable[[str | None], PromptJudge]] = {
    "local": _local,
    "openai": _openai,
    "anthropic": _anthropic,
}


def register_judge(name: str, factory: Callable[[str | None], PromptJudge]) -> None:
    """Add a backend: factory(model name or None) -> judge."""
    JUDGES[name] = factory


def get_judge(name: str = DEFAULT_JUDGE, model: str | None = None) -> PromptJudge:
    """A judge backend by name; `model` picks the judge model (registry name, or the API's model id)."""
    if name not in JUDGES:
        raise unknown_name("judge", name, list(JUDGES))
    return JUDGES[name](model)


__all__ = [
    "Aggregate",
    "DEFAULT_JUDGE",
    "JUDGES",
    "Judge",
    "PromptJudge",
    "Trait",
    "bundled_traits",
    "combine_coherence",
    "digit_score",
    "get_judge",
    "load_trait",
    "logprobs_to_probs",
    "parse_trait",
    "register_judge",
    "sampled_score",
    "sampled_yes",
    "yes_probability",
]
