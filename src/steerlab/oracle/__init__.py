"""Activation oracle: read vectors with a LoRA-adapted model, dream and red-team vectors against it.

    from steerlab.oracle import TrainConfig, train_lora_oracle, load_oracle, dream, DreamConfig
"""

from steerlab.oracle.data import TASKS, OracleExample, get_task, load_examples, parse_tasks, split_examples
from steerlab.oracle.inject import build_prompt, inject_vectors, norm_matched, placeholder_token_id
from steerlab.oracle.model import LoraOracle, OracleManifest, OracleTask, read_vectors
from steerlab.oracle.probe import ProbeOracle, load_oracle
from steerlab.oracle.train import TrainConfig, TrainReport, evaluate, train_lora_oracle, train_probe_oracle

__all__ = [
    "TASKS", "OracleExample", "get_task", "load_examples", "parse_tasks", "split_examples",
    "build_prompt", "inject_vectors", "norm_matched", "placeholder_token_id",
    "LoraOracle", "OracleManifest", "OracleTask", "read_vectors", "ProbeOracle", "load_oracle",
    "TrainConfig", "TrainReport", "evaluate", "train_lora_oracle", "train_probe_oracle",
]
