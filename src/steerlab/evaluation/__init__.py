"""Evaluation: adaptive coefficient search with judged answers, and its crash-safe results store.

    from steerlab.evaluation import EvalConfig, evaluate_steering
    summary = evaluate_steering(lm, "hv.safetensors", load_trait("human-values"), get_judge("local"),
                                EvalConfig(experiment="demo", layers="8,10"))
"""

from steerlab.evaluation.report import best_table, runs_table, write_plot
from steerlab.evaluation.search import EvalConfig, EvalSummary, evaluate_steering, layer_vectors, question_prompts
from steerlab.evaluation.store import RESULTS_VERSION, ResultsFile, coef_key, read_records, results_path

__all__ = [
    "RESULTS_VERSION",
    "EvalConfig",
    "EvalSummary",
    "ResultsFile",
    "best_table",
    "coef_key",
    "evaluate_steering",
    "layer_vectors",
    "question_prompts",
    "read_records",
    "results_path",
    "runs_table",
    "write_plot",
]
