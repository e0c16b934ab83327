"""Dreaming vectors: gradient descent on a vector until the oracle says a concept is present.

    result = dream(oracle, DreamConfig(question="What is this text about? Answer in one word.", answer="birds"))
    result.prob, result.vector          # oracle probability, unit vector [hidden] at oracle.layer

Loss (plain):    max(0, NLL(answer) - tau) + lambda_mag * (||v|| - 1)^2
Loss (red-team): the same + lambda_mse * MSE, where MSE compares the base model's final-layer
activations on neutral prompts steered with `strength` along v against unsteered ones.

Plain dreaming stops at the first step whose NLL is under tau (the oracle is convinced);
red-team dreaming runs every step and keeps the vector with the lowest MSE among those whose
NLL is under tau. The MSE is relative: mean squared change over the real tokens after the
first, divided by the variance of the unsteered activations over those tokens, because
Gemma 3's final-layer norms run into the tens of thousands (raw MSE is recorded as well).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from steerlab.activations import block_output, capture_blocks, run_until_stop
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel

NEUTRAL_SET = "neutral-probes"


@dataclass
class DreamConfig:
    """Hyper-parameters of one dreaming run (defaults follow the write-up)."""

    question: str
    answer: str
    redteam: bool = False
    steps: int = 150
    lr: float = 0.01
    tau: float = 0.01  # NLL margin: below it the oracle is convinced (p > exp(-tau) ~ 0.99)
    lambda_mag: float = 5.0
    lambda_mse: float = 1.0
    clip: float = 1.0  # gradient norm clipping
    init_scale: float = 0.01  # standard deviation of the starting noise
    strength: float = 0.2  # steering strength (relative to the layer's mean residual norm) in the MSE term
    n_neutral: int = 8  # neutral prompts in the MSE term
    seed: int = 0
    subspace: int = 0  # >0: search only the span of this many principal components of token activations (see activation_basis)


@dataclass
class DreamResult:
    vector: torch.Tensor  # [hidden] unit vector at `layer`
    layer: int
    prob: float  # oracle probability of the answer for the kept vector
    nll: float
    mse: float | None  # relative final-layer MSE of the kept vector (red-team runs, or measured after)
    raw_mse: float | None
    converged: bool  # the kept vector has NLL < tau
    kept_step: int
    steps_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)  # per step: step, nll, norm, mse, loss
    config: dict = field(default_factory=dict)


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Turn off parameter gradients inside (restored in `finally`), so backward reaches only the vector."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextmanager
def add_differentiable(block: nn.Module, delta: torch.Tensor) -> Iterator[None]:
    """Add `delta` `[hidden]` to every position of `block`'s output, keeping the graph (the MSE term's hook)."""

    def hook(_module, _inputs, output):
        hidden = block_output(output)  # [batch, pos, hidden]
        shifted = hidden + delta.to(hidden.dtype)
        return (shifted,) + tuple(output[1:]) if isinstance(output, tuple) else shifted

    handle = block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class FinalLayerMSE:
    """Relative MSE of the last block's output on neutral prompts, steered along v vs unsteered."""

    def __init__(self, lm: LoadedModel, layer: int, prompts: Sequence[str], strength: float) -> None:
        from steerlab.steering import mean_norm

        self.lm = lm
        self.layer = lm.check_layer(layer)
        self.coef = float(strength) * mean_norm(lm, layer)  # applied to a unit vector
        tokenizer = lm.tokenizer
        previous = tokenizer.padding_side
        tokenizer.padding_side = "right"
        try:
            encoded = tokenizer(list(prompts), return_tensors="pt", padding=True)
        finally:
            tokenizer.padding_side = previous
        self.input_ids = encoded["input_ids"].to(lm.device)  # [n, pos]
        mask = encoded["attention_mask"].to(lm.device).clone()
        self.attention = encoded["attention_mask"].to(lm.device)
        mask[:, 0] = 0  # right padding: skip each prompt's first token (attention sink)
        self.token_mask = mask.bool()  # [n, pos]
        with torch.no_grad():
            self.baseline = self._final(None)  # [n_tokens, hidden]
        self.variance = float(((self.baseline - self.baseline.mean(0)) ** 2).mean())

    def _final(self, delta: torch.Tensor | None) -> torch.Tensor:
        last = self.lm.n_layers - 1
        steering = add_differentiable(self.lm.blocks[self.layer], delta) if delta is not None else _nothing()
        with steering, capture_blocks(self.lm, [last], stop_after=True) as captured:
            run_until_stop(self.lm, self.input_ids, self.attention)  # stops before the unembedding
        return captured[last].float()[self.token_mask]  # [n_tokens, hidden]

    def __call__(self, vector: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(relative MSE, differentiable; raw MSE as a float) for steering along `vector` `[hidden]`."""
        unit = vector / vector.norm().clamp_min(1e-8)
        steered = self._final(self.coef * unit)
        raw = ((steered - self.baseline) ** 2).mean()
        return raw / self.variance, float(raw)


def neutral_prompts(n: int) -> list[str]:
    from steerlab.data import load_texts

    texts = [item.text for item in load_texts(NEUTRAL_SET)]
    if n < 1:
        raise SteerlabError(f"n_neutral must be at least 1, not {n}")
    return texts[:n]


def dream(oracle, config: DreamConfig, progress: bool = True, mse: FinalLayerMSE | None = None) -> DreamResult:
    """Optimise a vector from small noise against `oracle` (a LoraOracle or ProbeOracle)."""
    started = time.perf_counter()
    if config.steps < 1:
        raise SteerlabError(f"steps must be at least 1, not {config.steps}")
    with torch.no_grad():
        oracle.nll(torch.ones(oracle.lm.hidden_size), config.question, config.answer)  # validates question/answer early
    generator = torch.Generator().manual_seed(config.seed)
    basis = activation_basis(oracle.lm, oracle.layer, config.subspace) if config.subspace > 0 else None  # [k, hidden]
    size = oracle.lm.hidden_size if basis is None else basis.shape[0]
    coords = (torch.randn(size, generator=generator) * config.init_scale).to(oracle.lm.device)
    coords.requires_grad_(True)
    optimizer = torch.optim.AdamW([coords], lr=config.lr)
    if config.redteam and mse is None:
        mse = FinalLayerMSE(oracle.lm, oracle.layer, neutral_prompts(config.n_neutral), config.strength)
    history: list[dict] = []
    best: tuple[float, int, torch.Tensor, float, float | None] | None = None  # (mse, step, vector, nll, raw)
    oracle_model = getattr(oracle, "model", None)
    bar = tqdm(range(config.steps), desc="dreaming" + (" (red-team)" if config.redteam else ""), disable=not progress, leave=False)
    with frozen(oracle.lm.model), (frozen(oracle_model) if oracle_model is not None else _nothing()):
        for step in bar:
            vector = coords if basis is None else coords @ basis  # [hidden]
            nll = oracle.nll(vector, config.question, config.answer)
            norm = vector.norm()
            loss = torch.clamp(nll - config.tau, min=0.0) + config.lambda_mag * (norm - 1.0) ** 2
            row = {"step": step, "nll": nll.item(), "prob": float(torch.exp(-nll.detach())), "norm": norm.item()}
            if config.redteam:
                relative, raw = mse(vector)
                loss = loss + config.lambda_mse * relative
                row.update(mse=relative.item(), raw_mse=raw)
                if nll.item() < config.tau and (best is None or relative.item() < best[0]):
                    best = (relative.item(), step, vector.detach().clone(), nll.item(), raw)
            row["loss"] = loss.item()
            history.append(row)
            bar.set_postfix(nll=f"{row['nll']:.3f}", **({"mse": f"{row['mse']:.3f}"} if config.redteam else {}))
            if not config.redteam and nll.item() < config.tau:
                best = (float("nan"), step, vector.detach().clone(), nll.item(), None)
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([coords], config.clip)
            optimizer.step()
    converged = best is not None
    if best is None:  # never convinced: keep the last vector and say so
        vector = coords if basis is None else coords @ basis
        with torch.no_grad():
            final_nll = float(oracle.nll(vector.detach(), config.question, config.answer))
        best = (float("nan"), len(history), vector.detach().clone(), final_nll, None)
    kept = best[2] / best[2].norm().clamp_min(1e-8)
    kept_mse = best[0] if best[0] == best[0] else None
    return DreamResult(
        vector=kept.cpu(), layer=oracle.layer, prob=float(torch.exp(torch.tensor(-best[3]))), nll=best[3],
        mse=kept_mse, raw_mse=best[4], converged=converged, kept_step=best[1], steps_run=len(history),
        seconds=time.perf_counter() - started, history=history, config=asdict(config),
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def activation_basis(lm: LoadedModel, layer: int, k: int) -> torch.Tensor:
    """Top-k principal directions of token residuals at `layer` over generic texts.  # [k, hidden]

    The texts are the neutral probes and the continuation prompts (nothing about any concept);
    every real token after the first is a sample. Restricting dreaming to this span keeps the
    vector among directions the model actually uses.
    """
    from steerlab.data import load_texts
    from steerlab.oracle.compare import continuation_prompts

    texts = [item.text for item in load_texts(NEUTRAL_SET)] + continuation_prompts()
    tokenizer = lm.tokenizer
    previous = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = previous
    mask = encoded["attention_mask"].clone()
    mask[:, 0] = 0
    with torch.no_grad(), capture_blocks(lm, [layer]) as captured:
        run_until_stop(lm, encoded["input_ids"].to(lm.device), encoded["attention_mask"].to(lm.device))
    tokens = captured[layer].float().cpu()[mask.bool()]  # [n_tokens, hidden]
    if not 0 < k <= min(tokens.shape):
        raise SteerlabError(f"subspace size {k} must be between 1 and {min(tokens.shape)} (tokens x hidden available)")
    centered = tokens - tokens.mean(0)
    _, _, vh = torch.linalg.svd(centered, full_matrices=False)
    return vh[:k].to(lm.device)  # orthonormal rows


def measure_mse(lm: LoadedModel, layer: int, vector: torch.Tensor, strength: float, n_neutral: int = 8) -> tuple[float, float]:
    """(relative, raw) final-layer MSE of steering along `vector` — to compare plain and red-team vectors."""
    meter = FinalLayerMSE(lm, layer, neutral_prompts(n_neutral), strength)
    with torch.no_grad():
        relative, raw = meter(vector.to(lm.device))
    return float(relative), raw
