"""Steering evaluation with real models: the default local judge (Qwen2.5-Coder 0.5B), an
OpenAI-compatible server backed by that real model, and a search on SmolLM2 that resumes without
generating.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from steerlab.directions import Direction
from steerlab.evaluation import EvalConfig, evaluate_steering, read_records
from steerlab.judges import digit_score, load_trait
from steerlab.judges.http import OpenAIJudge
from steerlab.judges.local import LocalJudge

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]




@pytest.fixture(scope="module")
def judge():
    return LocalJudge()  # the default judge model


def test_local_judge_gives_scores_in_range(judge):
    trait = load_trait("formality")
    items = [("How do I ask my landlord to fix the heating?", "Dear Sir or Madam, I am writing to request a repair of the heating."),
             ("How do I ask my landlord to fix the heating?", "yo just text him lol")]
    traits, coherence = judge.score_all(items, trait.definition())
    for score in traits + coherence:
        assert score is None or 0.0 <= score <= 100.0
    assert sum(s is not None for s in traits + coherence) >= 2


def _server_backed_by(judge: LocalJudge):
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 whose top logprobs come from a real model."""
    lm = judge.lm

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = lm.chat_prompt(body["messages"][0]["content"])
            ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = lm.model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[0, -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            top = torch.topk(logprobs, body["top_logprobs"])
            entries = [{"token": lm.tokenizer.decode([int(i)]), "logprob": float(v)} for v, i in zip(top.values, top.indices)]
            payload = {"choices": [{"message": {"content": entries[0]["token"]}, "logprobs": {"content": [{**entries[0], "top_logprobs": entries}]}}]}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def test_openai_backend_matches_the_model_behind_a_real_server(judge):
    server = _server_backed_by(judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = OpenAIJudge(model="qwen-local", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="", workers=1)
        question, answer = "How do I make tea?", "Boil water, pour it over a tea bag and wait three minutes."
        from steerlab.judges.base import coherence_prompt

        got = remote.digit_scores([coherence_prompt(question, answer)])[0]
    finally:
        server.shutdown()
        server.server_close()
    local = judge.label_probabilities([coherence_prompt(question, answer)])[0]
    digits = {k: v for k, v in local.items() if k.isdigit()}
    if sum(digits.values()) < 0.25:
        assert got is None
    else:
        # the server sends only the top 20 tokens; digits outside them are the only possible gap
        assert got == pytest.approx(digit_score(digits).score, abs=5.0)


def test_search_on_smollm_stores_records_and_resumes_without_generating(smollm, judge, tmp_path):
    vector = torch.randn(smollm.hidden_size, generator=torch.Generator().manual_seed(0))
    path = Direction(vector / vector.norm(), [10], {"model": smollm.name}).save(tmp_path / "d.safetensors")
    config = EvalConfig(experiment="it", layers="10", search_steps=2, subset=2, max_new_tokens=10,
                        min_coherence=0.0, results_root=str(tmp_path / "exp"))
    trait = load_trait("human-values")
    first = evaluate_steering(smollm, path, trait, judge, config, log=lambda m: None)
    records, torn = read_records(first.path)
    assert not torn
    assert [r["type"] for r in records[:2]] == ["header", "baseline"]
    assert sum(r["type"] == "run" for r in records) == 2
    assert first.best is not None  # min_coherence 0: every scored run is valid
    again = evaluate_steering(smollm, path, trait, judge, config, log=lambda m: None)
    assert again.generated_rows == 0
    assert len(read_records(first.path)[0]) == len(records)
