"""A short real oracle training run on Gemma 3 270M beats chance on held-out texts."""

from __future__ import annotations

import pytest
import torch

from steerlab.oracle import LoraOracle, TrainConfig, train_lora_oracle

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]




def test_short_lora_training_beats_chance_on_held_out_texts(gemma, tmp_path):
    config = TrainConfig(layer=6, tasks="sentiment,language", limit_per_task=60, holdout=0.3, max_steps=12, minutes=3.0, seed=0)
    oracle, report = train_lora_oracle(gemma, config, progress=False)
    by_task = {row.task: row for row in report.accuracy}
    print(report.steps, report.losses, report.accuracy)
    assert set(by_task) == {"sentiment", "language"} and report.steps >= 6
    assert all(15 <= row.n_held_out <= 21 for row in by_task.values()), report.accuracy  # 30% of 60, stratified by label
    mean_accuracy = sum(row.accuracy for row in by_task.values()) / 2
    mean_chance = sum(row.chance for row in by_task.values()) / 2
    mean_untrained = sum(row.untrained for row in by_task.values()) / 2
    assert mean_accuracy > mean_chance + 0.2, report.accuracy
    assert mean_accuracy > mean_untrained, report.accuracy

    folder = oracle.save(tmp_path / "oracle")
    loaded = LoraOracle.load(folder, lm=gemma)
    vector = oracle.center * 0 + torch.randn(gemma.hidden_size)
    question = "Is the sentiment of this text positive or negative?"
    with torch.no_grad():
        assert abs(float(loaded.prob(vector, question, "positive")) - float(oracle.prob(vector, question, "positive"))) < 1e-4
