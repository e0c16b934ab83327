"""The local judge: an instruct model from the registry, run in-process, offline.

    from steerlab.judges import get_judge
    judge = get_judge("local")                       # qwen2.5-coder-0.5b-instruct by default
    judge.coherence("What is rain?", "Rain is water falling from clouds.")   # e.g. 85.3

Prompts go through the model's chat template and are scored in batches (left-padded, logits
of the last position only). The score is the probability-weighted mean over the digit tokens
0-9 of the next-token distribution; None when the digits hold too little probability.
"""

from __future__ import annotations

from typing import Sequence

import torch

from steerlab.errors import SteerlabError
from steerlab.judges.base import DIGITS, PromptJudge, digit_score, yes_probability

DEFAULT_LOCAL_JUDGE = "qwen2.5-coder-0.5b-instruct"


class LocalJudge(PromptJudge):
    """Scores with next-token probabilities of a local instruct model."""

    def __init__(self, model: str | None = None, batch_size: int = 16, lm=None) -> None:
        from steerlab.models import load_model

        self.lm = lm if lm is not None else load_model(model or DEFAULT_LOCAL_JUDGE)
        if not self.lm.is_chat:
            raise SteerlabError(
                f"the local judge needs an instruct model with a chat template; {self.lm.name} has none. "
                f"Use --judge-model {DEFAULT_LOCAL_JUDGE} or smollm2-135m-instruct"
            )
        self.batch_size = batch_size
        self.identity = f"local:{self.lm.name}@{self.lm.revision}"
        self._answer_ids = self._token_ids()

    def _token_ids(self) -> dict[str, list[int]]:
        """Single-token spellings of each digit and of yes/no (with and without a leading space)."""
        tokenizer = self.lm.tokenizer
        wanted = {d: [d, " " + d] for d in DIGITS}
        wanted.update({w: [w, " " + w, w.capitalize(), " " + w.capitalize()] for w in ("yes", "no")})
        ids: dict[str, list[int]] = {}
        for label, spellings in wanted.items():
            found = []
            for spelling in spellings:
                encoded = tokenizer.encode(spelling, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] not in found:
                    found.append(encoded[0])
            ids[label] = found
        missing = [d for d in DIGITS if not ids[d]]
        if missing:
            raise SteerlabError(f"the judge model {self.lm.name} has no single token for digit(s) {missing}; pick another judge model")
        return ids

    def label_probabilities(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        """For each prompt: label ("0".."9", "yes", "no") -> next-token probability."""
        lm = self.lm
        tokenizer = lm.tokenizer
        texts = [lm.chat_prompt(p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        labels = list(self._answer_ids)
        columns = [i for label in labels for i in self._answer_ids[label]]
        owners = [label for label in labels for _ in self._answer_ids[label]]
        out: list[dict[str, float]] = [{} for _ in texts]
        previous_side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    encoded = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
                    logits = lm.model(
                        input_ids=encoded["input_ids"].to(lm.device),
                        attention_mask=encoded["attention_mask"].to(lm.device),
                        use_cache=False,
                        logits_to_keep=1,
                    ).logits[:, -1, :].float()  # [batch, vocab]
                    probs = torch.softmax(logits, dim=-1)[:, columns].cpu()  # [batch, n_answer_tokens]
                    for row, index in enumerate(batch):
                        result: dict[str, float] = {}
                        for column, label in enumerate(owners):
                            result[label] = result.get(label, 0.0) + float(probs[row, column])
                        out[index] = result
        finally:
            tokenizer.padding_side = previous_side
        return out

    def digit_scores(self, prompts: Sequence[str]) -> list[float | None]:
        return [digit_score(p).score for p in self.label_probabilities(prompts)]

    def yes_probabilities(self, prompts: Sequence[str]) -> list[float | None]:
        return [yes_probability(p) for p in self.label_probabilities(prompts)]
