"""The activation oracle: a LoRA adapter on a copy of the base model that answers questions about a vector.

    oracle = LoraOracle.load("experiments/oracle/gemma-l6")
    p = oracle.prob(vector, "What is this text about? Answer in one word.", "birds")   # differentiable in vector

Vectors live in the base model's residual stream at `oracle.layer` (read with the adapter
off: the oracle keeps its own copy of the weights, so the memoised base model is never
touched). Before injection a vector is taken relative to the layer's mean activation
(`vector - center`, see `read_vectors`), because Gemma 3's massive activations make raw
residual directions almost identical across texts; steering vectors, mean differences and
dreamed vectors are displacements already and go in as they are.

Directory format (version 1): the peft adapter files, `center.safetensors` (tensor `center`
`[hidden]`) and `manifest.json` (see `OracleManifest`).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from steerlab.activations import capture_blocks, run_until_stop
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel
from steerlab.oracle.inject import OraclePrompt, build_prompt, inject_vectors, pad_prompts, placeholder_token_id

MANIFEST_VERSION = 1
MANIFEST = "manifest.json"
CENTER_FILE = "center.safetensors"


@dataclass
class OracleTask:
    """One kind of question the oracle is trained on."""

    name: str
    question: str
    choices: list[str]
    source: str = ""  # bundled JSONL file name


@dataclass
class OracleManifest:
    """What an oracle directory records about how it was made."""

    kind: str  # "lora" or "probe"
    base_model: str
    base_revision: str
    layer: int
    hidden_size: int
    inject_block: int
    placeholder: str
    placeholder_id: int
    read_position: str
    data_hash: str
    tasks: list[dict] = field(default_factory=list)  # OracleTask as dicts
    lora: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    accuracy: list[dict] = field(default_factory=list)  # per task: held-out accuracy and chance
    steerlab_version: str = ""
    created: str = ""
    format_version: int = MANIFEST_VERSION

    def task_list(self) -> list[OracleTask]:
        return [OracleTask(**task) for task in self.tasks]

    def write(self, folder: Path) -> None:
        _atomic_write_text(folder / MANIFEST, json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, folder: Path) -> "OracleManifest":
        path = folder / MANIFEST
        if not path.exists():
            raise SteerlabError(f"{folder} has no {MANIFEST}; it is not an oracle directory (make one with `steerlab oracle train`)")
        data = json.loads(path.read_text())
        if data.get("format_version") != MANIFEST_VERSION:
            raise SteerlabError(f"{path} has format_version {data.get('format_version')}; this steerlab reads {MANIFEST_VERSION}")
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def _atomic_write_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


def read_vectors(lm: LoadedModel, texts: Sequence[str], layer: int, batch_size: int = 16) -> torch.Tensor:
    """Mean residual at `layer` over each text's tokens after the first (BOS carries a massive outlier).

    Returns float32 `[n_texts, hidden]`. Uses the shared capture hooks with the pass stopped at `layer`.
    """
    tokenizer = lm.tokenizer
    out = torch.empty(len(texts), lm.hidden_size)
    previous = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        with torch.inference_mode(), capture_blocks(lm, [layer]) as captured:
            for start in range(0, len(texts), batch_size):
                encoded = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True)
                mask = encoded["attention_mask"].to(lm.device)  # [batch, pos]
                run_until_stop(lm, encoded["input_ids"].to(lm.device), mask)
                hidden = captured[layer].float()  # [batch, pos, hidden]
                weights = mask.float().clone()
                if weights.shape[1] > 1:
                    weights[:, 0] = 0.0  # right padding: column 0 is the first (BOS) token
                weights = weights.unsqueeze(-1)
                out[start : start + len(encoded["input_ids"])] = ((hidden * weights).sum(1) / weights.sum(1).clamp_min(1)).cpu()
    finally:
        tokenizer.padding_side = previous
    return out


class LoraOracle:
    """A LoRA-adapted copy of the base model that reads vectors injected at placeholder tokens."""

    def __init__(self, lm: LoadedModel, peft_model, manifest: OracleManifest, center: torch.Tensor) -> None:
        self.lm = lm  # the base model (adapter-free): vectors are read and steering is done here
        self.model = peft_model  # the oracle's own copy with the adapter
        self.manifest = manifest
        self.center = center.float()  # [hidden]
        self.layer = manifest.layer
        self.tokenizer = lm.tokenizer
        self._block = _peft_blocks(peft_model)[manifest.inject_block]

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        lm: LoadedModel,
        layer: int,
        tasks: list[OracleTask],
        center: torch.Tensor,
        data_hash: str,
        placeholder: str = " ?",
        inject_block: int = 1,
        rank: int = 8,
        alpha: int = 16,
        seed: int = 0,
    ) -> "LoraOracle":
        from peft import LoraConfig, get_peft_model

        lm.check_layer(layer)
        lm.check_layer(inject_block)
        placeholder_id = placeholder_token_id(lm.tokenizer, placeholder)
        torch.manual_seed(seed)
        targets = _lora_targets(lm.model)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets, bias="none")
        peft_model = get_peft_model(copy.deepcopy(lm.model), config)
        from steerlab import __version__

        manifest = OracleManifest(
            kind="lora", base_model=lm.name, base_revision=lm.revision, layer=layer, hidden_size=lm.hidden_size,
            inject_block=inject_block, placeholder=placeholder, placeholder_id=placeholder_id,
            read_position="mean over tokens after BOS", data_hash=data_hash, tasks=[asdict(t) for t in tasks],
            lora={"rank": rank, "alpha": alpha, "target_modules": targets}, steerlab_version=__version__,
        )
        return cls(lm, peft_model, manifest, center)

    def save(self, folder: str | Path) -> Path:
        """Write adapter, center and manifest into a fresh folder, then move it into place."""
        from safetensors.torch import save_file

        folder = Path(folder)
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            self.model.save_pretrained(str(partial))
            save_file({"center": self.center.contiguous()}, str(partial / CENTER_FILE))
            self.manifest.write(partial)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, lm: LoadedModel | None = None) -> "LoraOracle":
        from peft import PeftModel
        from safetensors.torch import load_file

        from steerlab.models import load_model

        folder = Path(folder)
        manifest = OracleManifest.read(folder)
        if manifest.kind != "lora":
            raise SteerlabError(f"{folder} holds a {manifest.kind!r} oracle; load it with load_oracle()")
        lm = lm or load_model(manifest.base_model)
        if lm.hidden_size != manifest.hidden_size:
            raise SteerlabError(f"{folder} was trained on {manifest.base_model} (hidden {manifest.hidden_size}); {lm.name} has hidden {lm.hidden_size}")
        peft_model = PeftModel.from_pretrained(copy.deepcopy(lm.model), str(folder))
        peft_model.eval()
        center = load_file(str(folder / CENTER_FILE))["center"]
        return cls(lm, peft_model, manifest, center)

    # ---------------------------------------------------------------- reading
    def vectors_for(self, texts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
        """Centered activation vectors of texts, ready to inject.  # [n, hidden]"""
        return read_vectors(self.lm, texts, self.layer, batch_size) - self.center

    def _prompt(self, question: str) -> OraclePrompt:
        return build_prompt(self.tokenizer, self.manifest.placeholder_id, question, self.layer)

    def _answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer.encode(" " + answer.strip(), add_special_tokens=False)
        if not ids:
            raise SteerlabError("the answer is empty; pass the word the oracle should say, e.g. --answer birds")
        return ids

    def log_probs(self, vectors: torch.Tensor, questions: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """Sum of log-probabilities of each answer's tokens.  vectors [batch, hidden] -> [batch] (differentiable)."""
        prompts = [self._prompt(q) for q in questions]
        answer_ids = [self._answer_ids(a) for a in answers]
        input_ids, attention, slots, answer_mask = pad_prompts(prompts, answer_ids, self.tokenizer.pad_token_id)
        keep = max(len(a) for a in answer_ids) + 1
        device = self.lm.device
        with inject_vectors(self._block, slots.to(device), vectors.to(device)):
            logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device), logits_to_keep=keep).logits
        logits = logits[:, :-1].float()  # [batch, keep-1, vocab] predicts the last keep-1 tokens
        targets = input_ids[:, -(keep - 1):].to(device)  # [batch, keep-1]
        mask = answer_mask[:, -(keep - 1):].to(device).float()
        token_lp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [batch, keep-1]
        return (token_lp * mask).sum(-1)

    def nll(self, vector: torch.Tensor, question: str, answer: str) -> torch.Tensor:
        """Negative log-likelihood of `answer` given one vector `[hidden]` (scalar, differentiable)."""
        return -self.log_probs(vector.reshape(1, -1), [question], [answer])[0]

    def prob(self, vector: torch.Tensor, question: str, answer: str) -> torch.Tensor:
        """Probability that the oracle answers `answer` about `vector` `[hidden]` (differentiable)."""
        return torch.exp(-self.nll(vector, question, answer))

    def choice_scores(self, vectors: torch.Tensor, question: str, choices: Sequence[str]) -> torch.Tensor:
        """Log-probability of each choice.  vectors [batch, hidden] -> [batch, n_choices]."""
        first = [self._answer_ids(c) for c in choices]
        if all(len(ids) == 1 for ids in first):  # one pass: read every choice off the last position
            prompts = [self._prompt(question)] * len(vectors)
            input_ids, attention, slots, _ = pad_prompts(prompts, [[] for _ in prompts], self.tokenizer.pad_token_id)
            device = self.lm.device
            with inject_vectors(self._block, slots.to(device), vectors.to(device)):
                logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device), logits_to_keep=1).logits
            log_probs = torch.log_softmax(logits[:, -1].float(), dim=-1)  # [batch, vocab]
            return log_probs[:, [ids[0] for ids in first]]
        columns = [self.log_probs(vectors, [question] * len(vectors), [c] * len(vectors)) for c in choices]
        return torch.stack(columns, dim=1)

    def tasks(self) -> list[OracleTask]:
        return self.manifest.task_list()


def _peft_blocks(peft_model):
    from steerlab.models.blocks import decoder_blocks

    return decoder_blocks(peft_model.get_base_model())


def _lora_targets(model) -> list[str]:
    """Projection names of attention and MLP that exist in this architecture."""
    wanted = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    found = [name for name in wanted if name in names]
    if not found:
        raise SteerlabError(
            f"found none of {wanted} among the linear layers of {type(model).__name__}; the LoRA oracle supports "
            f"llama-style blocks (llama, gemma, qwen, mistral); use --kind probe for this model"
        )
    return found
