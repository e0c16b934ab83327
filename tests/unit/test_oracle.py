"""Activation oracle on tiny random models: injection hook, gradients, save/load, dreaming, red-team."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import build_tiny
from steerlab.activations import capture_blocks, run_until_stop
from steerlab.errors import SteerlabError
from steerlab.oracle import (
    LoraOracle,
    OracleManifest,
    OracleTask,
    ProbeOracle,
    TrainConfig,
    build_prompt,
    inject_vectors,
    load_examples,
    load_oracle,
    parse_tasks,
    placeholder_token_id,
    split_examples,
    train_lora_oracle,
    train_probe_oracle,
)
from steerlab.oracle.compare import compare_vectors, concept_keywords, logit_lens, mention_count, continuation_prompts
from steerlab.oracle.dream import DreamConfig, dream, measure_mse
from steerlab.oracle.inject import pad_prompts

PLACEHOLDER = "@"  # one byte-level token in the tiny tokenizer
TASK = OracleTask("colour", "Which colour is this", ["red", "blue", "green"])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_oracle():
    lm = build_tiny("llama", n_layers=4, hidden=32)
    return LoraOracle.create(lm, layer=2, tasks=[TASK], center=torch.zeros(32), data_hash="test", placeholder=PLACEHOLDER, inject_block=1)


def _probe_oracle(lm, seed: int = 0) -> ProbeOracle:
    generator = torch.Generator().manual_seed(seed)
    weights = {TASK.name: (torch.randn(3, lm.hidden_size, generator=generator) * 4, torch.zeros(3))}
    manifest = OracleManifest(
        kind="probe", base_model=lm.name, base_revision=lm.revision, layer=2, hidden_size=lm.hidden_size, inject_block=-1,
        placeholder="", placeholder_id=-1, read_position="mean", data_hash="test", tasks=[TASK.__dict__.copy()],
    )
    return ProbeOracle(lm, manifest, torch.zeros(lm.hidden_size), weights)


def test_placeholder_must_encode_as_one_token():
    lm = build_tiny("llama")
    assert placeholder_token_id(lm.tokenizer, PLACEHOLDER) == lm.tokenizer.encode(PLACEHOLDER, add_special_tokens=False)[0]
    with pytest.raises(SteerlabError, match="exactly one token"):
        placeholder_token_id(lm.tokenizer, " placeholder")


def test_question_containing_the_placeholder_is_refused():
    lm = build_tiny("llama")
    pid = placeholder_token_id(lm.tokenizer, PLACEHOLDER)
    with pytest.raises(SteerlabError, match="contains the placeholder"):
        build_prompt(lm.tokenizer, pid, "mail me @ home", layer=2)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_injection_changes_exactly_the_placeholder_positions_by_the_formula(arch):
    lm = build_tiny(arch)
    pid = placeholder_token_id(lm.tokenizer, PLACEHOLDER)
    prompts = [build_prompt(lm.tokenizer, pid, "Which colour is this vector", layer=2, n_placeholders=2), build_prompt(lm.tokenizer, pid, "Is it big", layer=2, n_placeholders=2)]
    ids, mask, slots, _ = pad_prompts(prompts, [[], []], lm.tokenizer.pad_token_id)
    vectors = torch.randn(2, lm.hidden_size) * 7.0  # scale must not matter
    with torch.no_grad(), capture_blocks(lm, [1]) as plain:
        run_until_stop(lm, ids, mask)
    before = plain[1].clone()  # [2, pos, hidden]
    with torch.no_grad(), inject_vectors(lm.blocks[1], slots, vectors), capture_blocks(lm, [1]) as injected:
        run_until_stop(lm, ids, mask)
    after = injected[1]
    changed = (after - before).abs().amax(-1) > 0  # [2, pos]
    expected = torch.zeros_like(changed)
    for row, row_slots in enumerate(slots.tolist()):
        expected[row, row_slots] = True
        for slot in row_slots:
            h = before[row, slot]
            want = h + h.norm() * vectors[row] / vectors[row].norm()
            assert torch.allclose(after[row, slot], want, atol=1e-5)
    assert torch.equal(changed, expected)
    assert len(lm.blocks[1]._forward_hooks) == 0  # removed on exit


def test_hook_is_removed_after_an_exception(tiny_oracle):
    block = tiny_oracle._block
    with pytest.raises(RuntimeError):
        with inject_vectors(block, torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 32)):
            raise RuntimeError("boom")
    assert len(block._forward_hooks) == 0


def test_oracle_prob_is_differentiable_in_the_vector(tiny_oracle):
    vector = torch.randn(32, requires_grad=True)
    nll = tiny_oracle.nll(vector, TASK.question, "red")
    nll.backward()
    assert vector.grad is not None and torch.isfinite(vector.grad).all() and vector.grad.abs().sum() > 0
    with torch.no_grad():
        prob = tiny_oracle.prob(vector.detach(), TASK.question, "red")
    assert 0.0 < float(prob) < 1.0
    assert torch.allclose(prob, torch.exp(-nll.detach()), atol=1e-6)


def test_oracle_reads_the_vector_not_its_scale(tiny_oracle):
    vector = torch.randn(32)
    with torch.no_grad():
        a = tiny_oracle.nll(vector, TASK.question, "blue")
        b = tiny_oracle.nll(vector * 100.0, TASK.question, "blue")
        c = tiny_oracle.nll(-vector, TASK.question, "blue")
    assert torch.allclose(a, b, rtol=1e-5)
    assert abs(float(a - c)) > 1e-4


def test_base_model_is_untouched_by_the_adapter(tiny_oracle):
    lm = tiny_oracle.lm
    assert not any("lora" in name for name, _ in lm.model.named_modules())


def test_choice_scores_agree_with_log_probs(tiny_oracle):
    vectors = torch.randn(3, 32)
    fast = tiny_oracle.choice_scores(vectors, TASK.question, ["red", "blue", "green"])  # [3, 3]
    slow = torch.stack([tiny_oracle.log_probs(vectors, [TASK.question] * 3, [c] * 3) for c in ["red", "blue", "green"]], 1)
    assert fast.shape == (3, 3)
    # the tiny tokenizer spells the colours in several tokens, so choice_scores takes the slow path too
    assert torch.allclose(fast, slow, atol=1e-5)


def test_lora_oracle_save_load_round_trip(tiny_oracle, tmp_path):
    with torch.no_grad():
        for name, parameter in tiny_oracle.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)  # make the adapter do something
    vector = torch.randn(32)
    before = float(tiny_oracle.prob(vector, TASK.question, "green"))
    folder = tiny_oracle.save(tmp_path / "oracle")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["layer"] == 2 and manifest["placeholder"] == PLACEHOLDER
    assert manifest["data_hash"] == "test" and manifest["base_model"] == "tiny-llama"
    loaded = LoraOracle.load(folder, lm=tiny_oracle.lm)
    assert abs(float(loaded.prob(vector, TASK.question, "green")) - before) < 1e-5
    assert not list(tmp_path.glob("*.partial-*"))


def test_load_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(SteerlabError, match="not an oracle directory"):
        load_oracle(tmp_path)


def test_probe_oracle_round_trip_and_unknown_question(tmp_path):
    lm = build_tiny("llama")
    probe = _probe_oracle(lm)
    vector = torch.randn(32)
    folder = probe.save(tmp_path / "probe")
    loaded = load_oracle(folder, lm=lm)
    assert isinstance(loaded, ProbeOracle)
    assert torch.allclose(loaded.prob(vector, TASK.question, "red"), probe.prob(vector, "which  COLOUR is this", "Red"))
    with pytest.raises(SteerlabError, match="only answers the questions"):
        probe.prob(vector, "What animal is this?", "red")
    with pytest.raises(SteerlabError, match="answers one of"):
        probe.prob(vector, TASK.question, "purple")


def test_dreaming_reaches_the_margin_on_a_probe_oracle():
    lm = build_tiny("llama")
    probe = _probe_oracle(lm)
    result = dream(probe, DreamConfig(question=TASK.question, answer="green", steps=150), progress=False)
    assert result.converged and result.prob > 0.99
    assert result.steps_run < 150  # stopped once convinced
    assert abs(float(result.vector.norm()) - 1.0) < 1e-5
    start = result.history[0]["prob"]
    assert start < 0.99


def test_redteam_mse_is_lower_than_plain_dreaming():
    lm = build_tiny("llama")
    probe = _probe_oracle(lm, seed=1)
    config = DreamConfig(question=TASK.question, answer="blue", steps=150, strength=2.0, n_neutral=4)
    plain = dream(probe, config, progress=False)
    red = dream(probe, DreamConfig(**{**config.__dict__, "redteam": True}), progress=False)
    plain_mse, _ = measure_mse(lm, probe.layer, plain.vector, strength=2.0, n_neutral=4)
    red_mse, _ = measure_mse(lm, probe.layer, red.vector, strength=2.0, n_neutral=4)
    assert plain.converged and red.converged and red.prob > 0.99
    assert abs(red_mse - red.mse) < 1e-4  # the kept vector's recorded MSE
    assert red_mse < 0.7 * plain_mse
    assert all("mse" in row for row in red.history)


def test_model_parameters_keep_their_grad_flags_after_dreaming(tiny_oracle):
    flags = [p.requires_grad for p in tiny_oracle.model.parameters()]
    dream(tiny_oracle, DreamConfig(question=TASK.question, answer="red", steps=2), progress=False)
    assert [p.requires_grad for p in tiny_oracle.model.parameters()] == flags
    assert all(p.grad is None for p in tiny_oracle.model.parameters())


def test_bundled_sources_load_and_split_stratified():
    tasks = parse_tasks("all")
    examples = load_examples(tasks)
    assert {e.task for e in examples} == {"topic", "sentiment", "language", "gender"}
    train, held = split_examples(examples, holdout=0.2, seed=0)
    assert not {e.id for e in train} & {e.id for e in held}
    for task in tasks:
        assert {e.label for e in held if e.task == task.name} == set(task.choices)
    with pytest.raises(SteerlabError, match="available: gender, language, sentiment, topic"):
        parse_tasks("topic,colour")


def test_training_plumbing_on_a_tiny_model(tmp_path):
    lm = build_tiny("llama")
    config = TrainConfig(layer=2, tasks="sentiment,gender", limit_per_task=24, max_steps=2, batch_size=4, placeholder=PLACEHOLDER)
    oracle, report = train_lora_oracle(lm, config, progress=False)
    assert report.steps == 2 and len(report.losses) == 2
    assert [row.task for row in report.accuracy] == ["sentiment", "gender"]
    assert all(row.chance == 0.5 and 0 <= row.accuracy <= 1 for row in report.accuracy)
    assert oracle.manifest.training["steps"] == 2 and oracle.manifest.accuracy
    probe, probe_report = train_probe_oracle(lm, config, progress=False)
    assert probe_report.kind == "probe" and len(probe_report.accuracy) == 2


def test_compare_vectors_and_logit_lens():
    lm = build_tiny("gemma3")
    a = torch.randn(32)
    same = compare_vectors(a, 3 * a, top=10)
    assert abs(same["cosine"] - 1) < 1e-6 and same["top_overlap"] == 10
    assert abs(compare_vectors(a, -a)["cosine"] + 1) < 1e-6
    promoted, suppressed = logit_lens(lm, a, k=5)
    assert len(promoted) == 5 and promoted[0].logit >= promoted[-1].logit
    assert suppressed[0].logit <= suppressed[-1].logit


def test_concept_keywords_and_mentions():
    assert len(continuation_prompts()) >= 20
    birds = concept_keywords("Birds")
    assert mention_count(["A robin sang.", "Two sparrows", "The dog barked.", "Birdwatching"], birds) == 3
    with pytest.raises(SteerlabError, match="available: .*birds"):
        concept_keywords("spaceships")


def test_subspace_dreaming_stays_in_the_principal_span():
    from steerlab.oracle.dream import activation_basis

    lm = build_tiny("llama")
    probe = _probe_oracle(lm, seed=2)
    basis = activation_basis(lm, probe.layer, 8)  # [8, hidden]
    assert torch.allclose(basis @ basis.T, torch.eye(8), atol=1e-4)
    result = dream(probe, DreamConfig(question=TASK.question, answer="red", subspace=8, steps=150), progress=False)
    inside = (result.vector @ basis.T) @ basis
    assert torch.allclose(inside, result.vector, atol=1e-4)
    with pytest.raises(SteerlabError, match="subspace size"):
        activation_basis(lm, probe.layer, 10_000)
