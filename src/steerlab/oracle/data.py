"""Oracle training data: the bundled templated sources and the question asked about each.

Each source is a JSONL file under `steerlab/data/bundled/oracle/`, one object a line:
`{"id": ..., "text": ..., "label": ...}`. A task pairs a source with its question and its
answer choices (single words, each one token for Gemma 3):

    topic      What is this text about? Answer in one word.   birds animals food sport places weather music
    sentiment  Is the sentiment of this text positive or negative?   positive negative
    language   What language is this text in?                  English French Spanish German
    gender     Is the user a man or a woman?                   man woman

    examples = load_examples(["topic", "gender"])     # list[OracleExample]
    train, held = split_examples(examples, holdout=0.2, seed=0)
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Sequence

from steerlab.errors import SteerlabError, unknown_name
from steerlab.oracle.model import OracleTask

TASKS: dict[str, OracleTask] = {
    task.name: task
    for task in [
        OracleTask("topic", "What is this text about? Answer in one word.", ["birds", "animals", "food", "sport", "places", "weather", "music"], "topic.jsonl"),
        OracleTask("sentiment", "Is the sentiment of this text positive or negative?", ["positive", "negative"], "sentiment.jsonl"),
        OracleTask("language", "What language is this text in?", ["English", "French", "Spanish", "German"], "language.jsonl"),
        OracleTask("gender", "Is the user a man or a woman?", ["man", "woman"], "gender.jsonl"),
    ]
}


@dataclass
class OracleExample:
    """One text, the task it belongs to and its label (one of the task's choices)."""

    task: str
    text: str
    label: str
    id: str


def get_task(name: str) -> OracleTask:
    if name not in TASKS:
        raise unknown_name("oracle task", name, list(TASKS))
    return TASKS[name]


def parse_tasks(spec: str) -> list[OracleTask]:
    """"all" or a comma-separated list of task names."""
    if spec.strip() == "all":
        return list(TASKS.values())
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise SteerlabError(f"no oracle tasks in {spec!r}; use all or some of {', '.join(TASKS)}")
    return [get_task(name) for name in names]


def _source_text(file_name: str) -> str:
    return resources.files("steerlab.data").joinpath("bundled", "oracle", file_name).read_text(encoding="utf-8")


def load_examples(tasks: Sequence[OracleTask], limit_per_task: int | None = None, seed: int = 0) -> list[OracleExample]:
    """Examples of the given tasks from their bundled sources; bad lines fail with file and line."""
    examples: list[OracleExample] = []
    for task in tasks:
        rows = []
        for number, line in enumerate(_source_text(task.source).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise SteerlabError(f"oracle/{task.source} line {number}: {error}; each line needs text and label") from None
            if label not in task.choices:
                raise SteerlabError(f"oracle/{task.source} line {number}: label {label!r} is not one of {task.choices}")
            rows.append(OracleExample(task.name, text, label, str(row.get("id", f"{task.name}-{number}"))))
        if limit_per_task is not None and len(rows) > limit_per_task:
            rows = random.Random(seed).sample(rows, limit_per_task)
        examples.extend(rows)
    return examples


def split_examples(examples: Sequence[OracleExample], holdout: float, seed: int) -> tuple[list[OracleExample], list[OracleExample]]:
    """Held-out split stratified by (task, label), so every label appears on both sides."""
    if not 0.0 < holdout < 1.0:
        raise SteerlabError(f"holdout must be between 0 and 1 (exclusive), not {holdout}")
    groups: dict[tuple[str, str], list[OracleExample]] = {}
    for example in examples:
        groups.setdefault((example.task, example.label), []).append(example)
    rng = random.Random(seed)
    train, held = [], []
    for key in sorted(groups):
        rows = list(groups[key])
        rng.shuffle(rows)
        n_held = max(1, round(len(rows) * holdout)) if len(rows) > 1 else 0
        held.extend(rows[:n_held])
        train.extend(rows[n_held:])
    rng.shuffle(train)
    return train, held


def examples_hash(examples: Sequence[OracleExample], tasks: Sequence[OracleTask]) -> str:
    payload = json.dumps([[asdict(t) for t in tasks], [asdict(e) for e in examples]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
