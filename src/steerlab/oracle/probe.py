"""The linear-probe oracle: the cheap alternative with the LoRA oracle's interface.

One multinomial logistic regression per task on the unit direction of a (centered) vector,
so like the LoRA oracle it sees only the direction, never the scale:

    p(choice | v) = softmax(W_task @ v / ||v|| + b_task)

It answers only the questions it was trained on (matched ignoring case and spacing) and only
with their choices; anything else is an error that lists what it knows. Training takes
seconds, which makes it the oracle for unit tests and for quick dreaming runs.

Directory format (version 1): `probe.safetensors` (tensors `W.<task>` `[n_choices, hidden]`,
`b.<task>` `[n_choices]`), `center.safetensors` and `manifest.json` with kind "probe".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.oracle.model import CENTER_FILE, OracleManifest, OracleTask, read_vectors

PROBE_FILE = "probe.safetensors"


def _key(question: str) -> str:
    return " ".join(question.lower().split())


class ProbeOracle:
    """Per-task linear probes on `unit(vector)`; `prob`/`nll` are differentiable in the vector."""

    def __init__(self, lm: LoadedModel, manifest: OracleManifest, center: torch.Tensor, weights: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.lm = lm
        self.manifest = manifest
        self.center = center.float()  # [hidden]
        self.layer = manifest.layer
        self.weights = weights  # task name -> (W [n_choices, hidden], b [n_choices])
        self._by_question = {_key(task.question): task for task in manifest.task_list()}

    @classmethod
    def fit(
        cls,
        lm: LoadedModel,
        layer: int,
        tasks: list[OracleTask],
        vectors: dict[str, torch.Tensor],
        labels: dict[str, list[str]],
        center: torch.Tensor,
        data_hash: str,
        regularisation: float = 10.0,
    ) -> "ProbeOracle":
        """Fit one probe per task on centered vectors `[n, hidden]` and their labels."""
        from sklearn.linear_model import LogisticRegression

        from steerlab import __version__

        weights = {}
        for task in tasks:
            x = _unit(vectors[task.name]).numpy()
            index = {choice: i for i, choice in enumerate(task.choices)}
            unknown = sorted({label for label in labels[task.name] if label not in index})
            if unknown:
                raise SteerlabError(f"task {task.name}: labels {unknown} are not among its choices {task.choices}")
            y = np.array([index[label] for label in labels[task.name]])
            if len(set(y.tolist())) < 2:
                raise SteerlabError(f"task {task.name} needs examples of at least two choices to fit a probe")
            model = LogisticRegression(C=regularisation, max_iter=3000).fit(x, y)
            w = np.zeros((len(task.choices), x.shape[1]), dtype=np.float32)
            b = np.zeros(len(task.choices), dtype=np.float32)
            if len(model.classes_) == 2:  # sklearn stores one row for two classes
                w[model.classes_[1]] = model.coef_[0] / 2
                w[model.classes_[0]] = -model.coef_[0] / 2
                b[model.classes_[1]] = model.intercept_[0] / 2
                b[model.classes_[0]] = -model.intercept_[0] / 2
            else:
                w[model.classes_] = model.coef_
                b[model.classes_] = model.intercept_
                missing = [i for i in range(len(task.choices)) if i not in set(model.classes_.tolist())]
                b[missing] = -1e4
            weights[task.name] = (torch.from_numpy(w), torch.from_numpy(b))
        manifest = OracleManifest(
            kind="probe", base_model=lm.name, base_revision=lm.revision, layer=layer, hidden_size=lm.hidden_size,
            inject_block=-1, placeholder="", placeholder_id=-1, read_position="mean over tokens after BOS",
            data_hash=data_hash, tasks=[task.__dict__.copy() for task in tasks], steerlab_version=__version__,
            training={"regularisation_C": regularisation},
        )
        return cls(lm, manifest, center, weights)

    def vectors_for(self, texts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
        """Centered activation vectors of texts.  # [n, hidden]"""
        return read_vectors(self.lm, texts, self.layer, batch_size) - self.center

    def task_for(self, question: str) -> OracleTask:
        task = self._by_question.get(_key(question))
        if task is None:
            known = "; ".join(repr(t.question) for t in self._by_question.values())
            raise SteerlabError(f"the probe oracle only answers the questions it was trained on: {known}; got {question!r} (a LoRA oracle takes free questions)")
        return task

    def choice_scores(self, vectors: torch.Tensor, question: str, choices: Sequence[str] | None = None) -> torch.Tensor:
        """Log-probability of each of the task's choices.  vectors [batch, hidden] -> [batch, n_choices]."""
        task = self.task_for(question)
        w, b = self.weights[task.name]
        logits = _unit(vectors.float()) @ w.T.to(vectors.device) + b.to(vectors.device)  # [batch, n_choices]
        scores = torch.log_softmax(logits, dim=-1)
        if choices is None or list(choices) == task.choices:
            return scores
        return scores[:, [self._choice_index(task, c) for c in choices]]

    def _choice_index(self, task: OracleTask, answer: str) -> int:
        lowered = [c.lower() for c in task.choices]
        if answer.strip().lower() not in lowered:
            raise SteerlabError(f"the probe for {task.question!r} answers one of {task.choices}; got {answer!r}")
        return lowered.index(answer.strip().lower())

    def log_probs(self, vectors: torch.Tensor, questions: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """`[batch]` log-probability of each answer (differentiable)."""
        rows = []
        for vector, question, answer in zip(vectors, questions, answers):
            task = self.task_for(question)
            rows.append(self.choice_scores(vector.unsqueeze(0), question)[0, self._choice_index(task, answer)])
        return torch.stack(rows)

    def nll(self, vector: torch.Tensor, question: str, answer: str) -> torch.Tensor:
        return -self.log_probs(vector.reshape(1, -1), [question], [answer])[0]

    def prob(self, vector: torch.Tensor, question: str, answer: str) -> torch.Tensor:
        return torch.exp(-self.nll(vector, question, answer))

    def tasks(self) -> list[OracleTask]:
        return self.manifest.task_list()

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            tensors = {}
            for name, (w, b) in self.weights.items():
                tensors[f"W.{name}"] = w.contiguous()
                tensors[f"b.{name}"] = b.contiguous()
            save_file(tensors, str(partial / PROBE_FILE))
            save_file({"center": self.center.contiguous()}, str(partial / CENTER_FILE))
            self.manifest.write(partial)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, lm: LoadedModel | None = None) -> "ProbeOracle":
        from safetensors.torch import load_file

        from steerlab.models import load_model

        folder = Path(folder)
        manifest = OracleManifest.read(folder)
        if manifest.kind != "probe":
            raise SteerlabError(f"{folder} holds a {manifest.kind!r} oracle; load it with load_oracle()")
        lm = lm or load_model(manifest.base_model)
        tensors = load_file(str(folder / PROBE_FILE))
        weights = {task.name: (tensors[f"W.{task.name}"], tensors[f"b.{task.name}"]) for task in manifest.task_list()}
        center = load_file(str(folder / CENTER_FILE))["center"]
        return cls(lm, manifest, center, weights)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def load_oracle(folder: str | Path, lm: LoadedModel | None = None):
    """Load a LoRA or probe oracle directory by the kind its manifest records."""
    from steerlab.oracle.model import LoraOracle

    manifest = OracleManifest.read(Path(folder))
    loaders = {"lora": LoraOracle.load, "probe": ProbeOracle.load}
    if manifest.kind not in loaders:
        raise SteerlabError(f"{folder}: unknown oracle kind {manifest.kind!r}; known kinds: {', '.join(loaders)}")
    return loaders[manifest.kind](folder, lm)
