"""Judge aggregation on known probabilities, trait files, and the HTTP backends against a real local server."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from steerlab.errors import SteerlabError
from steerlab.judges import (
    bundled_traits,
    combine_coherence,
    digit_score,
    get_judge,
    load_trait,
    logprobs_to_probs,
    parse_trait,
    sampled_score,
    sampled_yes,
    yes_probability,
)
from steerlab.judges.http import AnthropicJudge, OpenAIJudge


def test_digit_score_is_the_probability_weighted_mean_mapped_to_100():
    # 0.5 on "9", 0.25 on "0", 0.25 on " 3" (leading space counts): mean digit = 4.5 + 0.75 = 5.25
    result = digit_score({"9": 0.5, "0": 0.25, " 3": 0.25, "hello": 0.0})
    assert result.score == pytest.approx(100 * 5.25 / 9)
    assert result.valid_mass == pytest.approx(1.0)


def test_digit_score_renormalises_over_valid_tokens_and_ignores_others():
    result = digit_score({"7": 0.3, "7 ": 0.1, "**": 0.5, "10": 0.1})  # "10" is not one digit
    assert result.score == pytest.approx(100 * 7 / 9)
    assert result.valid_mass == pytest.approx(0.4)


def test_digit_score_is_none_when_too_little_mass_is_valid():
    assert digit_score({"5": 0.2, "The": 0.8}).score is None
    assert digit_score({}).score is None
    assert digit_score({"5": 0.2}, min_mass=0.1).score == pytest.approx(100 * 5 / 9)


def test_yes_probability_and_coherence_cap():
    assert yes_probability({"Yes": 0.6, " no": 0.2, "maybe": 0.2}) == pytest.approx(0.75)
    assert yes_probability({"maybe": 1.0}) is None
    assert combine_coherence(90.0, 0.2) == 50.0  # fluent but off-topic: capped
    assert combine_coherence(40.0, 0.2) == 40.0
    assert combine_coherence(90.0, 0.9) == 90.0
    assert combine_coherence(90.0, None) == 90.0
    assert combine_coherence(None, 0.9) is None


def test_logprobs_and_samples_aggregate():
    probs = logprobs_to_probs([("8", math.log(0.5)), ("2", math.log(0.5))])
    assert digit_score(probs).score == pytest.approx(100 * 5 / 9)
    assert sampled_score(["9", " 6 because", "n/a", "3"]) == pytest.approx(100 * 6 / 9)
    assert sampled_score(["none"]) is None
    assert sampled_yes(["Yes.", "no", "yes", "unclear"]) == pytest.approx(2 / 3)


def test_bundled_traits_load_with_rubric_and_questions():
    names = bundled_traits()
    assert "human-values" in names and len(names) >= 4
    for name in names:
        trait = load_trait(name)
        assert 5 <= len(trait.questions) <= 10
        text = trait.definition()
        assert "High (7-9)" in text and "Mid (4-6)" in text and "Low (0-3)" in text
        assert len(trait.hash()) == 16


def test_trait_errors_name_the_field(tmp_path):
    with pytest.raises(SteerlabError, match="available: .*human-values"):
        load_trait("no-such-trait")
    with pytest.raises(SteerlabError, match="'rubric'"):
        parse_trait({"version": 1, "name": "x", "description": "y", "rubric": {"high": "a"}, "questions": ["q"]}, "f.json")
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(SteerlabError, match="not valid JSON"):
        load_trait(str(bad))


def test_unknown_judge_lists_the_backends():
    with pytest.raises(SteerlabError, match="available: anthropic, local, openai"):
        get_judge("oracle")


class _Server:
    """A real HTTP server on 127.0.0.1 answering like an OpenAI / Anthropic endpoint with fixed replies."""

    def __init__(self, reply_for) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, payload = reply_for(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _openai_reply(path, body):
    prompt = body["messages"][0]["content"]
    if "yes or no" in prompt:
        top = [("yes", math.log(0.2)), ("no", math.log(0.6)), ("maybe", math.log(0.2))]  # off-topic
    elif "trait" in prompt:
        top = [("8", math.log(0.5)), ("6", math.log(0.3)), (" 4", math.log(0.1)), ("x", math.log(0.1))]
    else:
        top = [("9", math.log(0.9)), ("Sure", math.log(0.1))]
    content = [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]
    return 200, {"choices": [{"message": {"content": top[0][0]}, "logprobs": {"content": content}}]}


def test_openai_backend_against_a_local_http_server():
    with _Server(_openai_reply) as server:
        judge = OpenAIJudge(model="fixed-logprobs", base_url=server.url + "/v1", api_key="test-key")
        trait = judge.trait("Q?", "A.", "helpfulness: rubric")
        coherence = judge.coherence("Q?", "A.")
    expected_digit = (8 * 0.5 + 6 * 0.3 + 4 * 0.1) / 0.9
    assert trait == pytest.approx(100 * expected_digit / 9)
    assert coherence == 50.0  # fluency 100 capped by the off-topic relevance reply
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer test-key"
    assert first["body"]["logprobs"] is True and first["body"]["top_logprobs"] == 20 and first["body"]["max_tokens"] == 1


def test_openai_backend_reports_missing_logprobs_and_http_errors():
    with _Server(lambda p, b: (200, {"choices": [{"message": {"content": "7"}}]})) as server:
        with pytest.raises(SteerlabError, match="returned no logprobs"):
            OpenAIJudge(model="m", base_url=server.url, api_key="k").trait("q", "a", "d")
    with _Server(lambda p, b: (401, {"error": "bad key"})) as server:
        with pytest.raises(SteerlabError, match="HTTP 401"):
            OpenAIJudge(model="m", base_url=server.url, api_key="k").coherence("q", "a")


def test_anthropic_backend_averages_sampled_digits():
    replies = iter(["7", "9", "8", "x", "7"] * 10)
    lock = threading.Lock()

    def reply(path, body):
        with lock:
            text = next(replies)
        return 200, {"content": [{"type": "text", "text": text}]}

    with _Server(reply) as server:
        judge = AnthropicJudge(model="m", base_url=server.url, api_key="k", samples=5, workers=1)
        score = judge.trait("q", "a", "d")
    assert score == pytest.approx(100 * (7 + 9 + 8 + 7) / 4 / 9)
    assert server.requests[0]["path"] == "/v1/messages"
    assert server.requests[0]["headers"]["x-api-key"] == "k"
