"""Search logic, results store (torn lines, resume, rescore, kill -9) on a tiny model with a scripted judge.

The judge here is a fake with deterministic scores so the search logic can be pinned; the real
local judge runs in tests/integration/test_eval_steering.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from steerlab.directions import Direction
from steerlab.errors import SteerlabError
from steerlab.evaluation import EvalConfig, ResultsFile, coef_key, evaluate_steering, read_records
from steerlab.judges import load_trait
from steerlab.judges.base import PromptJudge
from steerlab.steering import residual_norms

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ScriptedJudge(PromptJudge):
    """Scores from a hash of the prompt (stable across processes), coherence from a fixed level."""

    def __init__(self, coherence: float = 90.0, name: str = "scripted") -> None:
        self.level = coherence
        self.identity = f"{name}:{coherence}"
        self.calls = 0

    def digit_scores(self, prompts):
        self.calls += len(prompts)
        out = []
        for prompt in prompts:
            if prompt.startswith("Judge only the language"):
                out.append(self.level)
            else:
                out.append(float(int(hashlib.sha256(prompt.encode()).hexdigest()[:4], 16) % 101))
        return out

    def yes_probabilities(self, prompts):
        return [1.0 for _ in prompts]


def save_direction(lm, path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(lm.n_layers, lm.hidden_size, generator=generator)
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    return Direction(vectors, list(range(lm.n_layers)), {"model": lm.name}).save(path)


def config(tmp_path: Path, **changes) -> EvalConfig:
    base = dict(experiment="t", layers="1,2", search_steps=3, subset=2, max_new_tokens=4, results_root=str(tmp_path / "exp"))
    base.update(changes)
    return EvalConfig(**base)


def quiet(_message: str) -> None:
    pass


def test_search_moves_coefficients_by_the_rule_and_stores_every_step(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    trait = load_trait("optimism")
    summary = evaluate_steering(lm, direction, trait, ScriptedJudge(coherence=90.0), config(tmp_path), log=quiet)
    norms = residual_norms(lm)
    for layer in (1, 2):
        coefs = sorted(r["coef"] for r in summary.runs if r["layer"] == layer)
        start = 0.7 * norms[layer].mean  # unit vectors: base coef = mean norm
        first = 0.1 * 1.0 + 0.9 * 1.3  # momentum 0.1 on the x1.3 step
        second = 0.1 * first + 0.9 * 1.3
        assert coefs == pytest.approx([start, start * first, start * first * second])
    records, torn = read_records(summary.path)
    assert not torn
    assert [r["type"] for r in records][:2] == ["header", "baseline"]
    assert sum(r["type"] == "run" for r in records) == 6
    assert all(r["valid"] for r in summary.runs)  # coherence 90 >= 77
    assert summary.best is not None and summary.best["delta"] == max(r["delta"] for r in summary.runs)
    assert summary.plot is not None and summary.plot.read_bytes()[:4] == b"\x89PNG"
    assert any(r["type"] == "best" and all("answer" in q for q in r["per_question"]) for r in records)


def test_low_coherence_backs_off_and_makes_no_valid_run(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    summary = evaluate_steering(lm, direction, load_trait("optimism"), ScriptedJudge(coherence=50.0), config(tmp_path, layers="2"), log=quiet)
    coefs = sorted((r["coef"] for r in summary.runs), reverse=True)
    assert coefs[1] / coefs[0] == pytest.approx(0.1 + 0.9 * 0.85)
    assert summary.best is None and summary.best_per_layer == {}


def test_negative_direction_uses_negative_coefficients(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    summary = evaluate_steering(lm, direction, load_trait("optimism"), ScriptedJudge(), config(tmp_path, direction="negative", search_steps=1), log=quiet)
    assert all(r["coef"] < 0 for r in summary.runs)
    assert summary.path.parent.name == "negative"
    assert summary.best == min(summary.runs, key=lambda r: r["delta"])


def test_rerun_generates_nothing_and_keeps_each_pair_once(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    trait = load_trait("optimism")
    first = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path), log=quiet)
    again = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path), log=quiet)
    assert first.generated_rows > 0 and again.generated_rows == 0
    runs = [r for r in read_records(first.path)[0] if r["type"] == "run"]
    assert len(runs) == len({coef_key(r["layer"], r["coef"]) for r in runs}) == 6
    assert again.best == first.best


def test_grid_coefficients_and_baseline_only(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    trait = load_trait("formality")
    only = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path, baseline_only=True), log=quiet)
    assert only.runs == [] and only.baseline["trait_mean"] is not None
    grid = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path, coefficients=(0.01, 0.02)), log=quiet)
    assert sorted((r["layer"], r["coef"]) for r in grid.runs) == [(1, 0.01), (1, 0.02), (2, 0.01), (2, 0.02)]


def test_changed_inputs_are_refused_and_rescore_rejudges_stored_answers(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    trait = load_trait("optimism")
    evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path, save_responses="all", search_steps=1), log=quiet)
    with pytest.raises(SteerlabError, match="judge"):
        evaluate_steering(lm, direction, trait, ScriptedJudge(coherence=60.0), config(tmp_path, save_responses="all", search_steps=1), log=quiet)
    other = ScriptedJudge(coherence=60.0)
    rescored = evaluate_steering(lm, direction, trait, other, config(tmp_path, save_responses="all", search_steps=1, rescore=True), log=quiet)
    assert rescored.generated_rows == 0 and other.calls > 0
    assert all(r["judge"] == other.identity and r["rescored"] for r in rescored.runs)
    assert all(r["coherence_mean"] == 60.0 for r in rescored.runs)


def test_force_moves_old_results_aside(tiny_llama, tmp_path):
    lm = tiny_llama
    direction = save_direction(lm, tmp_path / "d.safetensors")
    trait = load_trait("optimism")
    first = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path, search_steps=1), log=quiet)
    again = evaluate_steering(lm, direction, trait, ScriptedJudge(), config(tmp_path, search_steps=1, force=True), log=quiet)
    assert again.generated_rows > 0
    assert list(first.path.parent.glob("results.*.replaced.jsonl"))


def test_torn_last_line_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "results.jsonl"
    store = ResultsFile.open(path)
    store.append({"type": "header", "model": "m"})
    store.append({"type": "run", "layer": 1, "coef": 2.0})
    with path.open("ab") as handle:
        handle.write(b'{"type": "run", "layer": 1, "coef": 3.0, "trait_me')  # a write killed half-way
    records, torn = read_records(path)
    assert torn and [r["type"] for r in records] == ["header", "run"]
    store = ResultsFile.open(path)
    store.append({"type": "run", "layer": 1, "coef": 4.0})
    assert path.read_bytes().endswith(b"\n")
    assert [r.get("coef") for r in read_records(path)[0]] == [None, 2.0, 4.0]


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"type": "header"}\nnot json\n{"type": "run", "layer": 1, "coef": 1}\n')
    with pytest.raises(SteerlabError, match=r"results.jsonl:2 is not valid JSON"):
        read_records(path)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    sys.path.insert(0, {unit!r})
    from conftest import build_tiny
    from test_evaluation import ScriptedJudge, config
    from steerlab.evaluation import evaluate_steering
    from steerlab.judges import load_trait
    from pathlib import Path

    class SlowJudge(ScriptedJudge):
        def digit_scores(self, prompts):
            time.sleep({delay})
            return super().digit_scores(prompts)

    lm = build_tiny("llama")
    tmp = Path({tmp!r})
    evaluate_steering(lm, tmp / "d.safetensors", load_trait("optimism"), SlowJudge(name="scripted"), config(tmp, search_steps=4), log=print)
    """
)


def test_resume_after_sigkill_keeps_every_finished_pair_once(tmp_path):
    from conftest import build_tiny

    lm = build_tiny("llama")
    save_direction(lm, tmp_path / "d.safetensors")
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(ROOT / "tests"), unit=str(ROOT / "tests" / "unit"), tmp=str(tmp_path), delay=1.5))
    results = config(tmp_path).results_root
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    found: list[Path] = []
    try:
        while time.time() < deadline:  # kill once the first step is stored and the second is in flight
            found = list(Path(results).rglob("results.jsonl"))
            if found and sum(r["type"] == "run" for r in read_records(found[0])[0]) >= 2:
                break
            if process.poll() is not None:
                pytest.fail(f"the run ended before it could be killed: {process.stdout.read().decode()[-2000:]}")
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    path = found[0]
    before = [r for r in read_records(path)[0] if r["type"] == "run"]
    assert 2 <= len(before) < 8
    summary = evaluate_steering(lm, tmp_path / "d.safetensors", load_trait("optimism"), ScriptedJudge(name="scripted"), config(tmp_path, search_steps=4), log=quiet)
    after = [r for r in read_records(path)[0] if r["type"] == "run"]
    keys = [coef_key(r["layer"], r["coef"]) for r in after]
    assert len(keys) == len(set(keys)) == 8  # 2 layers x 4 steps, each stored once
    assert after[: len(before)] == before  # finished pairs kept as they were
    # 2 questions per config; the best run's answers are regenerated when an earlier process judged it
    best_was_earlier = coef_key(summary.best["layer"], summary.best["coef"]) in keys[: len(before)]
    assert summary.generated_rows == (8 - len(before)) * 2 + (2 if best_was_earlier else 0)
