"""Causal validation: steer with a direction, judge the answers, search for the best coefficient.

    from steerlab.evaluation import EvalConfig, evaluate_steering
    summary = evaluate_steering(lm, "hv.safetensors", load_trait("human-values"), get_judge("local"),
                                EvalConfig(experiment="demo"))
    summary.best   # the valid run with the largest delta in the asked direction, or None

Adaptive search (default): every layer in the range starts at start_mult x its base
coefficient (mean residual norm / ||d||). Each step generates answers for every layer's
candidate in ONE per-sample batch, judges them, and moves each layer's coefficient up
(x up_mult) when coherence >= min_coherence + margin, else down (x down_mult), smoothed with
momentum. A grid (`coefficients` or `strengths`) replaces the search. Every judged step is
appended to results.jsonl before the next one starts; re-running skips (layer, coef) pairs
already there, so a killed run loses at most the step in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from steerlab.directions import Direction
from steerlab.errors import SteerlabError
from steerlab.evaluation.store import ResultsFile, coef_key, results_path, slug
from steerlab.judges.base import PromptJudge
from steerlab.judges.traits import Trait
from steerlab.layerspec import parse_layers
from steerlab.models.loading import LoadedModel
from steerlab.steering import SteeringSpec, generate, mean_norm

SAVE_MODES = ("all", "best", "none")


@dataclass
class EvalConfig:
    """Settings of one steering evaluation (CLI flags map one to one)."""

    experiment: str
    layers: str = "30%-60%"  # layer spec: "30%-60%", "4,6,8", "4-8", "all"
    direction: str = "positive"  # "positive" raises the trait, "negative" lowers it
    coefficients: tuple[float, ...] = ()  # absolute coefficients: a grid instead of the search
    strengths: tuple[float, ...] = ()  # relative strengths (x mean residual norm): a grid instead of the search
    search_steps: int = 5
    start_mult: float = 0.7
    up_mult: float = 1.3
    down_mult: float = 0.85
    momentum: float = 0.1  # 0 = use each step's multiplier as is; higher = more inertia
    min_coherence: float = 77.0  # a run is valid at or above this mean coherence
    search_margin: float = 3.0  # the search pushes up only above min_coherence + margin
    subset: int = 5  # questions per evaluation
    max_new_tokens: int | None = None  # default 64 for chat models, 16 for base models
    positions: str = "all"
    save_responses: str = "best"  # "all" | "best" | "none"
    baseline_only: bool = False
    force: bool = False
    rescore: bool = False
    results_root: str = "experiments"
    generation_batch: int | None = None  # rows per generate call (None = a whole step at once)

    def tokens_for(self, lm: LoadedModel) -> int:
        return self.max_new_tokens or (64 if lm.is_chat else 16)


@dataclass
class EvalSummary:
    path: Path
    baseline: dict
    runs: list[dict]  # latest record per (layer, coef)
    best: dict | None
    best_per_layer: dict[int, dict]
    generated_rows: int  # answers generated in this call (0 when everything was already stored)
    plot: Path | None = None
    notes: list[str] = field(default_factory=list)


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def question_prompts(lm: LoadedModel, questions: Sequence[str]) -> list[str]:
    """Chat models get the question (generate applies the template); base models a Q/A frame."""
    if lm.is_chat:
        return list(questions)
    return [f"Question: {q}\nAnswer:" for q in questions]


def layer_vectors(direction: Direction, layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """The vector per layer; a single-layer direction is used at every layer."""
    if len(direction.layers) == 1:
        return {layer: direction.vectors[0] for layer in layers}
    missing = [layer for layer in layers if layer not in direction.layers]
    if missing:
        raise SteerlabError(
            f"the direction file has no vectors for layers {missing} (it holds {direction.layers[0]}..{direction.layers[-1]}); "
            "pass --layers within that range or extract with --layers all"
        )
    return {layer: direction.vector(layer) for layer in layers}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


class _Evaluator:
    def __init__(self, lm, direction_path, trait, judge, config: EvalConfig, log: Callable[[str], None]) -> None:
        if config.direction not in ("positive", "negative"):
            raise SteerlabError(f"--direction must be positive or negative, got {config.direction!r}")
        if config.save_responses not in SAVE_MODES:
            raise SteerlabError(f"--save-responses must be one of {', '.join(SAVE_MODES)}, got {config.save_responses!r}")
        if config.subset < 1:
            raise SteerlabError(f"--subset must be at least 1, got {config.subset}")
        self.lm, self.trait, self.judge, self.config, self.log = lm, trait, judge, config, log
        self.direction_path = Path(direction_path)
        self.direction = Direction.load(self.direction_path)
        if self.direction.hidden_size != lm.hidden_size:
            raise SteerlabError(
                f"{self.direction_path} has hidden size {self.direction.hidden_size} but {lm.name} has {lm.hidden_size}; "
                "use a direction extracted from this model"
            )
        self.sign = 1.0 if config.direction == "positive" else -1.0
        self.questions = list(trait.questions[: config.subset])
        self.prompts = question_prompts(lm, self.questions)
        self.layers = parse_layers(config.layers, lm.n_layers)
        self.vectors = layer_vectors(self.direction, self.layers)
        self.max_new_tokens = config.tokens_for(lm)
        self.definition = trait.definition()
        self.path = results_path(
            config.results_root, config.experiment, trait.name, lm.name, self.direction_path.stem, config.direction
        )
        self.generated_rows = 0
        self.answers: dict[str, list[str]] = {}  # coef_key -> answers generated in this process

    # -- header -------------------------------------------------------------------------
    def header(self) -> dict:
        return {
            "type": "header",
            "experiment": self.config.experiment,
            "model": self.lm.name,
            "revision": self.lm.revision,
            "direction_file": str(self.direction_path),
            "direction_hash": file_hash(self.direction_path),
            "trait": self.trait.name,
            "trait_hash": self.trait.hash(),
            "questions": self.questions,
            "questions_hash": hashlib.sha256(json.dumps(self.prompts).encode()).hexdigest()[:16],
            "direction": self.config.direction,
            "max_new_tokens": self.max_new_tokens,
            "positions": self.config.positions,
            "judge": self.judge.identity,
            "config": asdict(self.config),
        }

    def open_store(self) -> ResultsFile:
        if self.config.force and self.path.exists():
            backup = self.path.with_name(f"results.{time.strftime('%Y%m%dT%H%M%S')}.replaced.jsonl")
            os.replace(self.path, backup)
            self.log(f"--force: moved the old results to {backup}")
        store = ResultsFile.open(self.path)
        if store.torn_tail:
            self.log(f"note: ignored a torn last line in {self.path} (a killed write); it will be cut off")
        fresh = self.header()
        existing = store.header()
        if existing is None:
            store.append(fresh)
            return store
        keys = ["model", "revision", "direction_hash", "trait_hash", "questions_hash", "direction", "max_new_tokens", "positions"]
        if not self.config.rescore:
            keys.append("judge")
        changed = [k for k in keys if existing.get(k) != fresh.get(k)]
        if changed:
            detail = "; ".join(f"{k}: stored {existing.get(k)!r}, now {fresh.get(k)!r}" for k in changed)
            raise SteerlabError(
                f"{self.path} holds results for different inputs ({detail}). Use --force to start over, "
                "another --experiment name, or --rescore to re-judge with a new judge"
            )
        if self.config.rescore and existing.get("judge") != fresh["judge"]:
            store.append(fresh)
        return store

    # -- generation and judging ---------------------------------------------------------
    def specs(self, layer: int, coef: float) -> list[SteeringSpec]:
        return [SteeringSpec(layer, self.vectors[layer], coef, positions=self.config.positions)]

    def generate_for(self, candidates: Sequence[tuple[int, float]]) -> list[list[str]]:
        """Answers to every question for each (layer, coef), all in one per-sample batch."""
        rows, per_row = [], []
        for layer, coef in candidates:
            for prompt in self.prompts:
                rows.append(prompt)
                per_row.append(self.specs(layer, coef) if layer >= 0 else [])
        texts = generate(
            self.lm, rows, per_row=per_row, max_new_tokens=self.max_new_tokens, batch_size=self.config.generation_batch
        )
        self.generated_rows += len(rows)
        n = len(self.prompts)
        return [[t.strip() for t in texts[i * n : (i + 1) * n]] for i in range(len(candidates))]

    def judge_many(self, answer_sets: Sequence[Sequence[str]]) -> list[tuple[list, list]]:
        items = [(q, a) for answers in answer_sets for q, a in zip(self.questions, answers)]
        traits, coherence = self.judge.score_all(items, self.definition)
        n = len(self.questions)
        return [(traits[i * n : (i + 1) * n], coherence[i * n : (i + 1) * n]) for i in range(len(answer_sets))]

    def per_question(self, answers, traits, coherence, keep_answers: bool) -> list[dict]:
        rows = []
        for q, a, t, c in zip(self.questions, answers, traits, coherence):
            row = {"question": q, "trait": t, "coherence": c}
            if keep_answers:
                row["answer"] = a
            rows.append(row)
        return rows

    def baseline_record(self, answers, traits, coherence) -> dict:
        return {
            "type": "baseline",
            "per_question": self.per_question(answers, traits, coherence, keep_answers=True),
            "trait_mean": _mean(traits),
            "coherence_mean": _mean(coherence),
            "judge": self.judge.identity,
            "max_new_tokens": self.max_new_tokens,
        }

    def run_record(self, layer, coef, step, answers, traits, coherence, baseline_trait, rescored=False) -> dict:
        trait_mean, coherence_mean = _mean(traits), _mean(coherence)
        delta = None if trait_mean is None or baseline_trait is None else trait_mean - baseline_trait
        vector = self.vectors[layer]
        norm = mean_norm(self.lm, layer)
        return {
            "type": "run",
            "layer": layer,
            "coef": coef,
            "strength": coef * float(vector.norm()) / norm,
            "step": step,
            "config": self.specs(layer, coef)[0].describe(),
            "per_question": self.per_question(answers, traits, coherence, keep_answers=self.config.save_responses == "all"),
            "trait_mean": trait_mean,
            "coherence_mean": coherence_mean,
            "delta": delta,
            "valid": coherence_mean is not None and coherence_mean >= self.config.min_coherence,
            "judge": self.judge.identity,
            "rescored": rescored,
        }

    # -- the stages ---------------------------------------------------------------------
    def ensure_baseline(self, store: ResultsFile) -> dict:
        baseline = store.baseline()
        if baseline is not None and baseline.get("judge") == self.judge.identity:
            return baseline
        if baseline is not None:  # rescore with another judge: reuse the stored answers
            answers = [row["answer"] for row in baseline["per_question"]]
            self.log("re-judging the stored baseline answers")
        else:
            self.log(f"baseline: generating {len(self.prompts)} unsteered answers")
            answers = self.generate_for([(-1, 0.0)])[0]
        (traits, coherence), = self.judge_many([answers])
        return store.append(self.baseline_record(answers, traits, coherence))

    def evaluate_step(self, store: ResultsFile, step: int, candidates: list[tuple[int, float]], baseline: dict) -> dict[str, dict]:
        """Judge every candidate not yet stored (one generate call); return the records of all candidates."""
        done = store.runs()
        todo = [(layer, coef) for layer, coef in candidates if coef_key(layer, coef) not in done]
        todo = list(dict.fromkeys(todo))
        if todo:
            self.log(f"step {step}: generating {len(todo)} config(s) x {len(self.prompts)} questions in one batch")
            answer_sets = self.generate_for(todo)
            scores = self.judge_many(answer_sets)
            for (layer, coef), answers, (traits, coherence) in zip(todo, answer_sets, scores):
                self.answers[coef_key(layer, coef)] = answers
                store.append(self.run_record(layer, coef, step, answers, traits, coherence, baseline["trait_mean"]))
        elif candidates:
            self.log(f"step {step}: all {len(candidates)} config(s) already in {self.path.name}; skipped")
        done = store.runs()
        return {coef_key(layer, coef): done[coef_key(layer, coef)] for layer, coef in candidates}

    def base_coef(self, layer: int) -> float:
        return mean_norm(self.lm, layer) / float(self.vectors[layer].norm())

    def grid(self, store: ResultsFile, baseline: dict) -> None:
        candidates = []
        for layer in self.layers:
            coefs = [abs(c) for c in self.config.coefficients]
            coefs += [abs(s) * self.base_coef(layer) for s in self.config.strengths]
            candidates += [(layer, self.sign * c) for c in coefs]
        self.evaluate_step(store, 0, candidates, baseline)

    def search(self, store: ResultsFile, baseline: dict) -> None:
        config = self.config
        coefs = {layer: config.start_mult * self.base_coef(layer) for layer in self.layers}
        previous = {layer: 1.0 for layer in self.layers}
        push_above = config.min_coherence + config.search_margin
        for step in range(config.search_steps):
            candidates = [(layer, self.sign * coefs[layer]) for layer in self.layers]
            records = self.evaluate_step(store, step, candidates, baseline)
            for layer, coef in candidates:
                record = records[coef_key(layer, coef)]
                coherent = record["coherence_mean"] is not None and record["coherence_mean"] >= push_above
                raw = config.up_mult if coherent else config.down_mult
                multiplier = config.momentum * previous[layer] + (1.0 - config.momentum) * raw
                previous[layer] = multiplier
                coefs[layer] = round(coefs[layer] * multiplier, 10)
                self.log(
                    f"  L{layer}: coef {coef:.4g} trait {_fmt(record['trait_mean'])} coherence {_fmt(record['coherence_mean'])}"
                    f" -> x{multiplier:.3f}"
                )

    def rescore_runs(self, store: ResultsFile, baseline: dict) -> None:
        stale = [r for r in store.runs().values() if r.get("judge") != self.judge.identity]
        if not stale:
            self.log(f"--rescore: every stored run was already judged by {self.judge.identity}; nothing to re-judge")
        with_answers = [r for r in stale if all("answer" in row for row in r["per_question"])]
        best_answers = {coef_key(r["layer"], r["coef"]): r for r in store.best_records() if r.get("per_question")}
        for record in stale:
            key = coef_key(record["layer"], record["coef"])
            if record not in with_answers and key in best_answers:
                with_answers.append({**record, "per_question": best_answers[key]["per_question"]})
        skipped = len(stale) - len(with_answers)
        if skipped:
            self.log(f"--rescore: {skipped} run(s) have no stored answers (saved with --save-responses best/none); kept as they are")
        if not with_answers:
            return
        answer_sets = [[row["answer"] for row in r["per_question"]] for r in with_answers]
        self.log(f"--rescore: re-judging {len(with_answers)} run(s) without generating")
        for record, answers, (traits, coherence) in zip(with_answers, answer_sets, self.judge_many(answer_sets)):
            self.answers[coef_key(record["layer"], record["coef"])] = answers
            store.append(
                self.run_record(record["layer"], record["coef"], record.get("step", 0), answers, traits, coherence,
                                baseline["trait_mean"], rescored=True)
            )

    def choose_best(self, runs: Sequence[dict]) -> tuple[dict | None, dict[int, dict]]:
        def score(record: dict) -> float:
            return self.sign * (record["delta"] if record["delta"] is not None else float("-inf"))

        valid = [r for r in runs if r["valid"] and r["delta"] is not None and r.get("judge") == self.judge.identity]
        per_layer: dict[int, dict] = {}
        for record in valid:
            current = per_layer.get(record["layer"])
            if current is None or score(record) > score(current):
                per_layer[record["layer"]] = record
        best = max(valid, key=score) if valid else None
        return best, dict(sorted(per_layer.items()))

    def record_best(self, store: ResultsFile, best: dict | None) -> None:
        if best is None or self.config.save_responses != "best":
            return
        key = coef_key(best["layer"], best["coef"])
        for record in store.best_records():
            if coef_key(record["layer"], record["coef"]) == key and record.get("judge") == best.get("judge"):
                return  # already stored by an earlier call
        answers = self.answers.get(key)
        if answers is None:  # judged by an earlier (killed) call: greedy decoding regenerates the same answers
            answers = self.generate_for([(best["layer"], best["coef"])])[0]
        rows = [dict(row, answer=a) for row, a in zip(best["per_question"], answers)]
        store.append({**{k: v for k, v in best.items() if k not in ("type", "version", "timestamp")}, "type": "best", "per_question": rows})


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def evaluate_steering(
    lm: LoadedModel,
    direction_path: str | Path,
    trait: Trait,
    judge: PromptJudge,
    config: EvalConfig,
    log: Callable[[str], None] = print,
) -> EvalSummary:
    """Baseline, then the search (or grid), then the best valid run; every step stored as it finishes."""
    evaluator = _Evaluator(lm, direction_path, trait, judge, config, log)
    store = evaluator.open_store()
    baseline = evaluator.ensure_baseline(store)
    if config.rescore:
        evaluator.rescore_runs(store, baseline)
    elif not config.baseline_only:
        if config.coefficients or config.strengths:
            evaluator.grid(store, baseline)
        else:
            evaluator.search(store, baseline)
    runs = list(store.runs().values())
    best, per_layer = evaluator.choose_best(runs)
    evaluator.record_best(store, best)
    from steerlab.evaluation.report import write_plot

    plot = write_plot(evaluator.path.with_name("trait_vs_coherence.png"), baseline, runs, config.min_coherence, trait.name)
    return EvalSummary(
        path=evaluator.path,
        baseline=baseline,
        runs=runs,
        best=best,
        best_per_layer=per_layer,
        generated_rows=evaluator.generated_rows,
        plot=plot,
    )


__all__ = ["EvalConfig", "EvalSummary", "evaluate_steering", "question_prompts", "layer_vectors", "slug"]
