"""A/B judge: verdict rules, outcome classification and the sign test, on known probabilities."""

import math

import numpy as np
import pytest

from steerlab.data import ContrastPair
from steerlab.studies import judge_ab
from steerlab.studies.judge_ab import run_judge_ab, verdict


def test_verdict_abstains_on_low_mass_or_ties():
    assert verdict(0.6, 0.2, 0.2, 0.1) == "A"
    assert verdict(0.1, 0.5, 0.2, 0.1) == "B"
    assert verdict(0.05, 0.1, 0.2, 0.1) == "abstain"  # too little mass on A/B
    assert verdict(0.40, 0.38, 0.2, 0.1) == "abstain"  # nearly tied


def exact_two_sided_sign_p(k, n):
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_outcomes_and_sign_test_on_known_probabilities(monkeypatch, tiny_llama):
    pairs = [ContrastPair("t", f"p{i}", f"kind {i}", f"cruel {i}", id=f"x{i}") for i in range(6)]
    # per pair: (first order: chosen is A), (swapped: chosen is B)
    table = np.array([
        [0.8, 0.1], [0.1, 0.8],  # correct both times
        [0.7, 0.1], [0.1, 0.7],  # correct
        [0.9, 0.05], [0.9, 0.05],  # always "A": contradiction (position bias)
        [0.01, 0.02], [0.6, 0.1],  # first abstains
        [0.1, 0.8], [0.8, 0.1],  # wrong both times
        [0.75, 0.1], [0.1, 0.75],  # correct
    ])
    monkeypatch.setattr(judge_ab, "letter_probabilities", lambda lm, prompts, batch_size=8: table[: len(prompts)])
    result = run_judge_ab(tiny_llama, pairs)
    assert [r["outcome"] for r in result.rows] == ["correct", "correct", "contradiction", "abstain", "wrong", "correct"]
    assert result.consistent == 4 and result.consistent_correct == 3
    assert result.abstain_rate == pytest.approx(1 / 6) and result.contradiction_rate == pytest.approx(1 / 6)
    assert result.agreement == pytest.approx(0.75)
    assert result.sign_test_p == pytest.approx(exact_two_sided_sign_p(3, 4))


def test_letter_probabilities_are_real_distributions(tiny_llama):
    probabilities = judge_ab.letter_probabilities(tiny_llama, ["Which is kinder? A or B", "Answer:"])
    assert probabilities.shape == (2, 2)
    assert np.all(probabilities >= 0) and np.all(probabilities.sum(1) <= 1 + 1e-6)
