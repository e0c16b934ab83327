"""The judge protocol, the scoring prompts, and turning answer-token probabilities into scores.

A judge rates an answer on two 0..100 scales:
  trait(question, answer, definition)  how strongly the answer shows the trait
  coherence(question, answer)          grammar and fluency; answers judged off-topic are capped at 50
Either returns None when the judge gives too little probability to valid answers.

The judge model answers with one digit 0-9 (Qwen and many other tokenizers split numbers
into single digits, so one token cannot carry 0-100); the score is the probability-weighted
mean digit mapped to 0..100. Backends only supply next-token probabilities (or samples).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence, runtime_checkable

DIGITS = "0123456789"
MIN_VALID_MASS = 0.25  # below this much probability on digits, the judge did not really answer
OFF_TOPIC_CAP = 50.0
MAX_ANSWER_CHARS = 1500

TRAIT_PROMPT = """You grade a single answer for one trait.

Trait definition and scale:
{definition}

Question: {question}
Answer: {answer}

How strongly does the answer show this trait? Reply with a single digit from 0 (not at all) to 9 (extremely). Reply with the digit only."""

COHERENCE_PROMPT = """Judge only the language of the answer below, not its content or opinions: is it grammatical, fluent and easy to follow? Repetition, broken words, random symbols or text that trails into nonsense make it worse.

Question: {question}
Answer: {answer}

Reply with a single digit from 0 (gibberish) to 9 (perfectly fluent). Reply with the digit only."""

RELEVANCE_PROMPT = """Question: {question}
Answer: {answer}

Does the answer respond to the question, at least partly, instead of talking about something unrelated? Reply with yes or no only."""


@runtime_checkable
class Judge(Protocol):
    """What every judge offers; `identity` is recorded next to every score it gives."""

    identity: str

    def trait(self, question: str, answer: str, definition: str) -> float | None: ...

    def coherence(self, question: str, answer: str) -> float | None: ...

    def trait_batch(self, items: Sequence[tuple[str, str]], definition: str) -> list[float | None]: ...

    def coherence_batch(self, items: Sequence[tuple[str, str]]) -> list[float | None]: ...


@dataclass(frozen=True)
class Aggregate:
    """A 0..100 score from a digit distribution, with the probability mass it rested on."""

    score: float | None
    valid_mass: float


def _clip(answer: str) -> str:
    answer = answer.strip() or "(empty answer)"
    return answer if len(answer) <= MAX_ANSWER_CHARS else answer[:MAX_ANSWER_CHARS] + " [...]"


def trait_prompt(question: str, answer: str, definition: str) -> str:
    return TRAIT_PROMPT.format(definition=definition.strip(), question=question.strip(), answer=_clip(answer))


def coherence_prompt(question: str, answer: str) -> str:
    return COHERENCE_PROMPT.format(question=question.strip(), answer=_clip(answer))


def relevance_prompt(question: str, answer: str) -> str:
    return RELEVANCE_PROMPT.format(question=question.strip(), answer=_clip(answer))


def digit_score(probs: Mapping[str, float], min_mass: float = MIN_VALID_MASS) -> Aggregate:
    """Probability-weighted mean of the digits 0-9 among `probs` (token text -> probability), as 0..100.

    Token texts are stripped, so " 7" and "7" both count as 7 (their probabilities add up).
    The score is None when the digits together hold less than `min_mass`.
    """
    mass = [0.0] * 10
    for token, probability in probs.items():
        text = token.strip()
        if len(text) == 1 and text in DIGITS and probability > 0:
            mass[int(text)] += float(probability)
    total = sum(mass)
    if total < min_mass or total <= 0:
        return Aggregate(None, total)
    mean_digit = sum(d * p for d, p in enumerate(mass)) / total
    return Aggregate(100.0 * mean_digit / 9.0, total)


def yes_probability(probs: Mapping[str, float], min_mass: float = MIN_VALID_MASS) -> float | None:
    """P(yes) / (P(yes) + P(no)) over tokens reading yes/no in any case; None when they hold < min_mass."""
    yes = sum(p for t, p in probs.items() if t.strip().lower() == "yes")
    no = sum(p for t, p in probs.items() if t.strip().lower() == "no")
    if yes + no < min_mass or yes + no <= 0:
        return None
    return yes / (yes + no)


def logprobs_to_probs(top_logprobs: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Top-k (token, logprob) pairs as token -> probability (repeated tokens add up)."""
    probs: dict[str, float] = {}
    for token, logprob in top_logprobs:
        probs[token] = probs.get(token, 0.0) + math.exp(float(logprob))
    return probs


def sampled_score(samples: Sequence[str]) -> float | None:
    """Mean of the digits that sampled replies start with, as 0..100; None when none is valid."""
    digits = []
    for reply in samples:
        text = reply.strip()
        if text and text[0] in DIGITS:
            digits.append(int(text[0]))
    return None if not digits else 100.0 * (sum(digits) / len(digits)) / 9.0


def sampled_yes(samples: Sequence[str]) -> float | None:
    """Share of sampled replies that start with yes among those starting with yes or no."""
    votes = []
    for reply in samples:
        text = reply.strip().lower()
        if text.startswith("yes"):
            votes.append(1.0)
        elif text.startswith("no"):
            votes.append(0.0)
    return None if not votes else sum(votes) / len(votes)


def combine_coherence(fluency: float | None, relevance: float | None) -> float | None:
    """Fluency score capped at 50 when the relevance check says the answer is off-topic."""
    if fluency is None:
        return None
    if relevance is not None and relevance < 0.5:
        return min(fluency, OFF_TOPIC_CAP)
    return fluency


class PromptJudge(ABC):
    """A judge built from two primitives: digit scores and yes-probabilities for batches of prompts."""

    identity: str = "abstract"

    @abstractmethod
    def digit_scores(self, prompts: Sequence[str]) -> list[float | None]:
        """0..100 score (or None) for each prompt asking for one digit."""

    @abstractmethod
    def yes_probabilities(self, prompts: Sequence[str]) -> list[float | None]:
        """P(yes) (or None) for each prompt asking yes or no."""

    def trait(self, question: str, answer: str, definition: str) -> float | None:
        return self.trait_batch([(question, answer)], definition)[0]

    def coherence(self, question: str, answer: str) -> float | None:
        return self.coherence_batch([(question, answer)])[0]

    def trait_batch(self, items: Sequence[tuple[str, str]], definition: str) -> list[float | None]:
        return self.digit_scores([trait_prompt(q, a, definition) for q, a in items])

    def coherence_batch(self, items: Sequence[tuple[str, str]]) -> list[float | None]:
        fluency = self.digit_scores([coherence_prompt(q, a) for q, a in items])
        relevance = self.yes_probabilities([relevance_prompt(q, a) for q, a in items])
        return [combine_coherence(f, r) for f, r in zip(fluency, relevance)]

    def score_all(
        self, items: Sequence[tuple[str, str]], definition: str
    ) -> tuple[list[float | None], list[float | None]]:
        """Trait and coherence scores of many (question, answer) items, in as few batches as possible."""
        n = len(items)
        digits = self.digit_scores(
            [trait_prompt(q, a, definition) for q, a in items] + [coherence_prompt(q, a) for q, a in items]
        )
        relevance = self.yes_probabilities([relevance_prompt(q, a) for q, a in items])
        coherence = [combine_coherence(f, r) for f, r in zip(digits[n:], relevance)]
        return digits[:n], coherence
