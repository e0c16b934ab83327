"""Steering: hooks that add or ablate directions, relative strengths, steered generation.

    from steerlab.steering import SteeringSpec, steer, generate, residual_norms, relative_coef
    coef = relative_coef(lm, 6, d, strength=0.5)
    print(generate(lm, ["Tell me about your weekend."], specs=[SteeringSpec(6, d, coef)]))
"""

from steerlab.steering.generate import format_prompts, generate, generate_ids
from steerlab.steering.hooks import MODES, POSITIONS, SteeringSpec, steer
from steerlab.steering.norms import NormStats, mean_norm, relative_coef, residual_norms, strength_of

__all__ = [
    "MODES",
    "POSITIONS",
    "NormStats",
    "SteeringSpec",
    "format_prompts",
    "generate",
    "generate_ids",
    "mean_norm",
    "relative_coef",
    "residual_norms",
    "steer",
    "strength_of",
]
