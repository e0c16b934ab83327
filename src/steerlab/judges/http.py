"""HTTP judges: any OpenAI-compatible endpoint (top logprobs) and Anthropic (sampled scores).

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-...   # any compatible server
    judge = get_judge("openai", model="gpt-4.1-mini")
    export ANTHROPIC_API_KEY=...
    judge = get_judge("anthropic", model="claude-3-5-haiku-latest")

The OpenAI backend asks for one token with its top-20 logprobs and aggregates the digits the
same way as the local judge. Anthropic's API gives no logprobs, so that backend samples a few
replies and averages the digits they start with. Requests run concurrently on a small thread
pool and are retried on 429 / 5xx with backoff.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from steerlab.errors import SteerlabError
from steerlab.judges.base import PromptJudge, digit_score, logprobs_to_probs, sampled_score, sampled_yes, yes_probability

DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-3-5-haiku-latest"
RETRIES = 4


def _post_json(url: str, payload: dict, headers: dict[str, str], timeout: float) -> dict:
    body = json.dumps(payload).encode()
    delay = 1.0
    for attempt in range(RETRIES):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read().decode())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            if error.code in (429, 500, 502, 503, 504) and attempt < RETRIES - 1:
                time.sleep(delay)
                delay *= 2
                continue
            raise SteerlabError(f"judge request to {url} failed with HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            if attempt < RETRIES - 1:
                time.sleep(delay)
                delay *= 2
                continue
            raise SteerlabError(f"cannot reach the judge endpoint {url} ({error}); check the base URL and that the server runs") from None
    raise AssertionError("unreachable")


class OpenAIJudge(PromptJudge):
    """Scores from the top logprobs of one generated token on an OpenAI-compatible chat endpoint."""

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        workers: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not self.api_key and "api.openai.com" in self.base_url:
            raise SteerlabError("the openai judge needs OPENAI_API_KEY (or OPENAI_BASE_URL pointing at a compatible server)")
        self.model = model or os.environ.get("STEERLAB_JUDGE_MODEL") or DEFAULT_OPENAI_MODEL
        self.workers = workers
        self.timeout = timeout
        self.identity = f"openai:{self.model}@{self.base_url}"

    def top_logprobs(self, prompt: str) -> list[tuple[str, float]]:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        reply = _post_json(f"{self.base_url}/chat/completions", payload, headers, self.timeout)
        try:
            content = reply["choices"][0]["logprobs"]["content"]
        except (KeyError, IndexError, TypeError):
            raise SteerlabError(
                f"the endpoint {self.base_url} returned no logprobs (reply starts {json.dumps(reply)[:200]}); "
                "use a server that supports logprobs/top_logprobs, or the anthropic (sampling) judge"
            ) from None
        if not content:
            return []
        return [(item["token"], float(item["logprob"])) for item in content[0].get("top_logprobs", [])]

    def _distributions(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return [logprobs_to_probs(top) for top in pool.map(self.top_logprobs, prompts)]

    def digit_scores(self, prompts: Sequence[str]) -> list[float | None]:
        return [digit_score(p).score for p in self._distributions(prompts)]

    def yes_probabilities(self, prompts: Sequence[str]) -> list[float | None]:
        return [yes_probability(p) for p in self._distributions(prompts)]


class AnthropicJudge(PromptJudge):
    """Scores as the mean of a few sampled one-digit replies (the API offers no logprobs)."""

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        samples: int = 5,
        workers: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY", "")
        if not self.api_key and "api.anthropic.com" in self.base_url:
            raise SteerlabError("the anthropic judge needs ANTHROPIC_API_KEY in the environment")
        self.model = model or os.environ.get("STEERLAB_JUDGE_MODEL") or DEFAULT_ANTHROPIC_MODEL
        self.samples = samples
        self.workers = workers
        self.timeout = timeout
        self.identity = f"anthropic:{self.model}@{self.base_url} x{samples} samples"

    def sample(self, prompt: str) -> str:
        payload = {
            "model": self.model,
            "max_tokens": 4,
            "temperature": 1.0,
            "messages": [{"role": "user", "content": prompt}],
        }
        headers = {"x-api-key": self.api_key, "anthropic-version": "2023-06-01"}
        reply = _post_json(f"{self.base_url}/v1/messages", payload, headers, self.timeout)
        parts = reply.get("content") or []
        return "".join(part.get("text", "") for part in parts if part.get("type") == "text")

    def _samples(self, prompts: Sequence[str]) -> list[list[str]]:
        jobs = [p for p in prompts for _ in range(self.samples)]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            replies = list(pool.map(self.sample, jobs))
        return [replies[i * self.samples : (i + 1) * self.samples] for i in range(len(prompts))]

    def digit_scores(self, prompts: Sequence[str]) -> list[float | None]:
        return [sampled_score(s) for s in self._samples(prompts)]

    def yes_probabilities(self, prompts: Sequence[str]) -> list[float | None]:
        return [sampled_yes(s) for s in self._samples(prompts)]
