"""Steering hooks, positions under the KV cache, per-row configs and relative strength on tiny models."""

from __future__ import annotations

import pytest
import torch

from steerlab.activations import capture_blocks, run_until_stop
from steerlab.errors import SteerlabError
from steerlab.steering import SteeringSpec, generate, generate_ids, relative_coef, residual_norms, steer, strength_of

PROMPTS = ["The cat sat on", "A kind neighbour helps carry the shopping", "Tomorrow"]  # different lengths: left padding


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def unit(hidden: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    vector = torch.randn(hidden, generator=generator)
    return vector / vector.norm()


def strong(lm, layer: int, seed: int = 1, strength: float = 8.0) -> SteeringSpec:
    vector = unit(lm.hidden_size, seed)
    return SteeringSpec(layer, vector, relative_coef(lm, layer, vector, strength))


def test_strength_zero_gives_identical_greedy_output(tiny_lm):
    vector = unit(tiny_lm.hidden_size)
    plain = generate_ids(tiny_lm, PROMPTS, max_new_tokens=8)
    zero = generate_ids(tiny_lm, PROMPTS, specs=[SteeringSpec(1, vector, 0.0)], max_new_tokens=8)
    assert zero == plain
    steered = generate_ids(tiny_lm, PROMPTS, specs=[strong(tiny_lm, 1)], max_new_tokens=8)
    assert steered != plain  # the hook does act when the coefficient is not zero


def test_greedy_generation_is_deterministic(tiny_llama):
    spec = strong(tiny_llama, 2, strength=1.0)
    assert generate_ids(tiny_llama, PROMPTS, [spec], max_new_tokens=6) == generate_ids(tiny_llama, PROMPTS, [spec], max_new_tokens=6)


def test_add_changes_block_output_by_exactly_coef_times_vector(tiny_llama):
    lm = tiny_llama
    vector = unit(lm.hidden_size)
    encoded = lm.tokenizer(["The cat sat on the mat"], return_tensors="pt")
    with torch.inference_mode():
        with capture_blocks(lm, [1], stop_after=True) as plain:
            run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
        with steer(lm, [SteeringSpec(1, vector, 0.75)]), capture_blocks(lm, [1], stop_after=True) as steered:
            run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
    difference = steered[1] - plain[1]  # [1, pos, hidden]
    torch.testing.assert_close(difference, (0.75 * vector).expand_as(difference), rtol=0, atol=1e-6)


def test_ablate_removes_the_component_along_the_vector(tiny_llama):
    lm = tiny_llama
    vector = unit(lm.hidden_size) * 3.0  # any norm: ablation uses the unit vector
    encoded = lm.tokenizer(["The cat sat on the mat"], return_tensors="pt")
    with torch.inference_mode(), steer(lm, [SteeringSpec(2, vector, 1.0, mode="ablate")]), capture_blocks(lm, [2]) as got:
        run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
    along = got[2] @ (vector / vector.norm())  # [1, pos]
    assert along.abs().max() < 1e-5


def test_several_specs_at_once_add_up(tiny_llama):
    lm = tiny_llama  # block 2, not the last: the last layer is read after the final norm
    a, b = unit(lm.hidden_size, 1), unit(lm.hidden_size, 2)
    encoded = lm.tokenizer(["The cat sat"], return_tensors="pt")
    with torch.inference_mode():
        with capture_blocks(lm, [2]) as plain:
            run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
        with steer(lm, [SteeringSpec(2, a, 0.5), SteeringSpec(2, b, -0.25)]), capture_blocks(lm, [2]) as both:
            run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
    torch.testing.assert_close(both[2] - plain[2], (0.5 * a - 0.25 * b).expand_as(plain[2]), rtol=0, atol=1e-6)


def test_hooks_are_removed_after_an_exception(tiny_llama):
    lm = tiny_llama
    before = [len(block._forward_hooks) for block in lm.blocks], len(lm.model._forward_pre_hooks)
    reference = generate_ids(lm, PROMPTS, max_new_tokens=5)
    with pytest.raises(RuntimeError, match="boom"):
        with steer(lm, [strong(lm, 1), strong(lm, 3, seed=2)]):
            raise RuntimeError("boom")
    after = [len(block._forward_hooks) for block in lm.blocks], len(lm.model._forward_pre_hooks)
    assert after == before
    assert generate_ids(lm, PROMPTS, max_new_tokens=5) == reference


def test_positions_with_kv_cache_match_a_manual_loop(tiny_llama):
    """prompt-only steering changes the prefill only; generated-only changes only the fed-back tokens."""
    lm = tiny_llama
    spec = strong(lm, 1, strength=6.0)
    prompt = "The cat sat on"

    def manual(prompt_steer: bool, generated_steer: bool, n: int = 6) -> list[int]:
        ids = lm.tokenizer([prompt], return_tensors="pt")["input_ids"]  # [1, pos]
        out = []
        with torch.inference_mode():
            for step in range(n):  # no KV cache: steer exactly the chosen positions by hand
                plan = torch.zeros(ids.shape[1], 1)
                n_prompt = ids.shape[1] - step
                plan[:n_prompt] = float(prompt_steer)
                plan[n_prompt:] = float(generated_steer)

                def hook(_m, _i, output, plan=plan):
                    hidden = output[0] if isinstance(output, tuple) else output
                    hidden = hidden + plan[None] * (spec.coef * spec.vector)
                    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

                handle = lm.blocks[spec.layer].register_forward_hook(hook)
                try:
                    logits = lm.model(input_ids=ids, use_cache=False).logits[0, -1]
                finally:
                    handle.remove()
                token = int(logits.argmax())
                out.append(token)
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        return out

    for positions, flags in {"all": (True, True), "prompt": (True, False), "generated": (False, True)}.items():
        with_cache = generate_ids(lm, [prompt], [SteeringSpec(1, spec.vector, spec.coef, positions=positions)], max_new_tokens=6)[0]
        assert with_cache == manual(*flags)[: len(with_cache)], positions
    generated_only = generate_ids(lm, [prompt], [SteeringSpec(1, spec.vector, spec.coef, positions="generated")], max_new_tokens=6)[0]
    plain = generate_ids(lm, [prompt], max_new_tokens=6)[0]
    assert generated_only[0] == plain[0]  # the first token comes from the (unsteered) prompt


def test_positions_under_left_padding_match_single_runs(tiny_llama):
    lm = tiny_llama
    for positions in ("prompt", "generated"):
        spec = SteeringSpec(2, unit(lm.hidden_size), relative_coef(lm, 2, unit(lm.hidden_size), 5.0), positions=positions)
        batched = generate_ids(lm, PROMPTS, [spec], max_new_tokens=6)
        alone = [generate_ids(lm, [p], [spec], max_new_tokens=6)[0] for p in PROMPTS]
        assert batched == alone, positions


def test_per_row_batch_equals_each_config_run_alone(tiny_lm):
    lm = tiny_lm
    configs = [[], [strong(lm, 1, strength=2.0)], [strong(lm, 2, seed=3, strength=4.0)], [strong(lm, 1), strong(lm, 3, seed=5)]]
    configs.append([SteeringSpec(2, unit(lm.hidden_size, 7), 1.0, mode="ablate")])
    prompt = PROMPTS[1]
    together = generate_ids(lm, [prompt] * len(configs), per_row=configs, max_new_tokens=6)
    alone = [generate_ids(lm, [prompt], specs=config, max_new_tokens=6)[0] for config in configs]
    assert together == alone
    assert len({tuple(row) for row in together}) > 1  # the configs really differ


def test_per_row_with_different_prompts_and_padding(tiny_llama):
    lm = tiny_llama
    configs = [[strong(lm, 1, strength=3.0)], [], [strong(lm, 3, seed=4, strength=5.0)]]
    together = generate_ids(lm, PROMPTS, per_row=configs, max_new_tokens=5)
    alone = [generate_ids(lm, [p], specs=c, max_new_tokens=5)[0] for p, c in zip(PROMPTS, configs)]
    assert together == alone


def test_per_row_count_must_match_prompts(tiny_llama):
    with pytest.raises(SteerlabError, match="per_row has 1 entries for 3 prompts"):
        generate(tiny_llama, PROMPTS, per_row=[[]], max_new_tokens=2)


def test_bad_specs_fail_with_clear_errors(tiny_llama):
    with pytest.raises(SteerlabError, match="unknown steering mode"):
        SteeringSpec(0, torch.zeros(32), 1.0, mode="multiply")
    with pytest.raises(SteerlabError, match="positions"):
        SteeringSpec(0, torch.zeros(32), 1.0, positions="middle")
    with pytest.raises(SteerlabError, match="hidden size 32"):
        with steer(tiny_llama, [SteeringSpec(0, torch.zeros(7), 1.0)]):
            pass
    with pytest.raises(SteerlabError, match="out of range"):
        with steer(tiny_llama, [SteeringSpec(9, torch.zeros(32), 1.0)]):
            pass


def test_bfloat16_model_steers_in_float32_and_keeps_dtype():
    from conftest import build_tiny

    lm = build_tiny("llama")
    lm.model.to(torch.bfloat16)
    vector = unit(lm.hidden_size)
    encoded = lm.tokenizer(["The cat"], return_tensors="pt")
    with torch.inference_mode(), steer(lm, [SteeringSpec(1, vector, 0.0)]), capture_blocks(lm, [1]) as zero:
        run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
    with torch.inference_mode(), capture_blocks(lm, [1]) as plain:
        run_until_stop(lm, encoded["input_ids"], encoded["attention_mask"])
    assert zero[1].dtype == torch.bfloat16
    assert torch.equal(zero[1], plain[1])


def test_relative_strength_uses_the_mean_residual_norm(tiny_llama):
    lm = tiny_llama
    stats = residual_norms(lm)
    assert set(stats) == set(range(lm.n_layers))
    assert all(s.mean > 0 and s.median > 0 and s.n_tokens > 0 for s in stats.values())
    vector = unit(lm.hidden_size) * 4.0
    coef = relative_coef(lm, 2, vector, 0.5)
    assert coef == pytest.approx(0.5 * stats[2].mean / 4.0)
    assert strength_of(lm, 2, vector, coef) == pytest.approx(0.5)
    assert residual_norms(lm) is not stats and residual_norms(lm)[2] == stats[2]  # cached per process
    with pytest.raises(SteerlabError, match="all zeros"):
        relative_coef(lm, 2, torch.zeros(lm.hidden_size), 1.0)
