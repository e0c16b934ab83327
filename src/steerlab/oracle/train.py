"""Training an activation oracle within a time budget, and scoring it on held-out texts.

    lm = load_model("gemma-3-270m")
    oracle, report = train_lora_oracle(lm, TrainConfig(layer=6, minutes=12))
    oracle.save("experiments/oracle/gemma-l6")
    print(report.accuracy)          # held-out accuracy per task next to chance

The budget covers everything: reading the activations once, scoring the untrained oracle
(the zero-shot baseline), the training steps and the final held-out scoring, whose duration
is estimated from the first scoring so the run ends on time. Each step samples a batch
across all tasks; the loss is the answer's negative log-likelihood with the text's centered
activation injected at the placeholder.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Sequence

import torch
from tqdm.auto import tqdm

from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.oracle.data import OracleExample, examples_hash, load_examples, parse_tasks, split_examples
from steerlab.oracle.model import LoraOracle, OracleTask, read_vectors
from steerlab.oracle.probe import ProbeOracle


@dataclass
class TrainConfig:
    """How to train an oracle; defaults fit a 2-core CPU."""

    layer: int  # residual layer of the base model whose vectors the oracle reads
    tasks: str = "all"  # "all" or comma-separated task names (see steerlab.oracle.data.TASKS)
    minutes: float = 30.0  # wall-clock budget for the whole run
    max_steps: int | None = None  # stop earlier after this many steps
    batch_size: int = 8
    lr: float = 1e-3
    rank: int = 8  # LoRA rank (alpha = 2 * rank)
    holdout: float = 0.2
    seed: int = 0
    limit_per_task: int | None = None  # use at most this many texts per task
    placeholder: str = " ?"
    inject_block: int = 1
    eval_untrained: bool = True  # score the adapter before training (zero-shot baseline)


@dataclass
class TaskAccuracy:
    task: str
    n_held_out: int
    accuracy: float
    chance: float
    untrained: float | None = None


@dataclass
class TrainReport:
    kind: str
    steps: int
    examples_seen: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # mean loss per step
    accuracy: list[TaskAccuracy] = field(default_factory=list)
    n_train: int = 0
    n_held_out: int = 0
    data_hash: str = ""


@dataclass
class OracleData:
    """Examples split in two, with their centered vectors `[n, hidden]` and the center `[hidden]`."""

    tasks: list[OracleTask]
    train: list[OracleExample]
    held_out: list[OracleExample]
    train_vectors: torch.Tensor
    held_vectors: torch.Tensor
    center: torch.Tensor
    data_hash: str


def prepare_data(lm: LoadedModel, config: TrainConfig, progress: bool = True) -> OracleData:
    """Read every text's vector at the layer once; center with the training texts' mean."""
    lm.check_layer(config.layer)
    tasks = parse_tasks(config.tasks)
    examples = load_examples(tasks, config.limit_per_task, config.seed)
    train, held = split_examples(examples, config.holdout, config.seed)
    texts = [e.text for e in train] + [e.text for e in held]
    vectors = torch.cat([
        read_vectors(lm, texts[i : i + 64], config.layer)
        for i in tqdm(range(0, len(texts), 64), desc="reading activations", disable=not progress, leave=False)
    ])  # [n, hidden]
    train_raw, held_raw = vectors[: len(train)], vectors[len(train) :]
    center = train_raw.mean(0)  # [hidden]
    return OracleData(tasks, train, held, train_raw - center, held_raw - center, center, examples_hash(examples, tasks))


def evaluate(oracle, tasks: Sequence[OracleTask], examples: Sequence[OracleExample], vectors: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """Held-out accuracy per task: the choice with the highest log-probability wins."""
    accuracy = {}
    for task in tasks:
        rows = [i for i, e in enumerate(examples) if e.task == task.name]
        if not rows:
            continue
        correct = 0
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                scores = oracle.choice_scores(vectors[batch], task.question, task.choices)  # [batch, n_choices]
                predicted = scores.argmax(dim=1).tolist()
                correct += sum(task.choices[p] == examples[i].label for p, i in zip(predicted, batch))
        accuracy[task.name] = correct / len(rows)
    return accuracy


def _report_rows(tasks, held, trained: dict, untrained: dict | None) -> list[TaskAccuracy]:
    return [
        TaskAccuracy(t.name, sum(e.task == t.name for e in held), trained[t.name], 1.0 / len(t.choices), None if untrained is None else untrained[t.name])
        for t in tasks
        if t.name in trained
    ]


def train_lora_oracle(lm: LoadedModel, config: TrainConfig, progress: bool = True) -> tuple[LoraOracle, TrainReport]:
    """Train a LoRA oracle within `config.minutes`; the manifest records data hash, training and accuracy."""
    started = time.perf_counter()
    deadline = started + config.minutes * 60.0
    data = prepare_data(lm, config, progress)
    if not data.train:
        raise SteerlabError("no training examples: lower --holdout or raise the per-task limit")
    oracle = LoraOracle.create(
        lm, config.layer, data.tasks, data.center, data.data_hash, config.placeholder, config.inject_block,
        rank=config.rank, alpha=2 * config.rank, seed=config.seed,
    )
    eval_started = time.perf_counter()
    oracle.model.eval()
    untrained = evaluate(oracle, data.tasks, data.held_out, data.held_vectors) if config.eval_untrained else None
    eval_seconds = (time.perf_counter() - eval_started) if config.eval_untrained else 0.02 * len(data.held_out)

    params = [p for p in oracle.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    task_by_name = {t.name: t for t in data.tasks}
    order: list[int] = []
    losses: list[float] = []
    step = 0
    step_seconds = 0.0
    bar = tqdm(desc="training oracle", disable=not progress, unit="step")
    oracle.model.train()
    while True:
        if config.max_steps is not None and step >= config.max_steps:
            break
        if time.perf_counter() + step_seconds + 1.2 * eval_seconds > deadline:
            break
        tick = time.perf_counter()
        if len(order) < config.batch_size:
            fresh = list(range(len(data.train)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch, order = order[: config.batch_size], order[config.batch_size :]
        examples = [data.train[i] for i in batch]
        log_probs = oracle.log_probs(
            data.train_vectors[batch], [task_by_name[e.task].question for e in examples], [e.label for e in examples]
        )  # [batch]
        loss = -log_probs.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        step_seconds = 0.8 * step_seconds + 0.2 * (time.perf_counter() - tick) if step > 1 else time.perf_counter() - tick
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    oracle.model.eval()
    trained = evaluate(oracle, data.tasks, data.held_out, data.held_vectors)
    report = TrainReport(
        kind="lora", steps=step, examples_seen=step * config.batch_size, seconds=time.perf_counter() - started,
        losses=losses, accuracy=_report_rows(data.tasks, data.held_out, trained, untrained),
        n_train=len(data.train), n_held_out=len(data.held_out), data_hash=data.data_hash,
    )
    _record(oracle.manifest, config, report)
    return oracle, report


def train_probe_oracle(lm: LoadedModel, config: TrainConfig, progress: bool = True) -> tuple[ProbeOracle, TrainReport]:
    """Fit the linear-probe oracle on the same data and split (seconds)."""
    started = time.perf_counter()
    data = prepare_data(lm, config, progress)
    vectors = {t.name: data.train_vectors[[i for i, e in enumerate(data.train) if e.task == t.name]] for t in data.tasks}
    labels = {t.name: [e.label for e in data.train if e.task == t.name] for t in data.tasks}
    oracle = ProbeOracle.fit(lm, config.layer, data.tasks, vectors, labels, data.center, data.data_hash)
    trained = evaluate(oracle, data.tasks, data.held_out, data.held_vectors)
    report = TrainReport(
        kind="probe", steps=0, examples_seen=len(data.train), seconds=time.perf_counter() - started,
        accuracy=_report_rows(data.tasks, data.held_out, trained, None),
        n_train=len(data.train), n_held_out=len(data.held_out), data_hash=data.data_hash,
    )
    _record(oracle.manifest, config, report)
    return oracle, report


def _record(manifest, config: TrainConfig, report: TrainReport) -> None:
    manifest.training = {
        **manifest.training,
        **{key: value for key, value in asdict(config).items()},
        "steps": report.steps,
        "examples_seen": report.examples_seen,
        "seconds": round(report.seconds, 1),
        "n_train": report.n_train,
        "n_held_out": report.n_held_out,
        "final_loss": report.losses[-1] if report.losses else None,
    }
    manifest.accuracy = [asdict(row) for row in report.accuracy]
    manifest.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
