"""Trait definitions for judging: a rubric with high / mid / low bands and eliciting questions.

    from steerlab.judges import load_trait
    trait = load_trait("human-values")      # bundled name, or a path to a .json file
    trait.definition()                       # the text the judge scores against
    trait.questions[:5]

File format (version 1): {"version": 1, "name", "description", "rubric": {"high", "mid",
"low"}, "questions": [5-10 strings], "direction": "positive" | "negative"}.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from steerlab.errors import SteerlabError, unknown_name

TRAIT_FORMAT_VERSION = 1
BANDS = {"high": "7-9", "mid": "4-6", "low": "0-3"}


@dataclass(frozen=True)
class Trait:
    """A trait to judge: what it means, how to grade it, and questions that bring it out."""

    name: str
    description: str
    rubric: dict[str, str]  # band ("high" | "mid" | "low") -> what answers in that band look like
    questions: tuple[str, ...]
    direction: str = "positive"  # the usual steering direction: induce ("positive") or suppress

    def definition(self) -> str:
        lines = [f"{self.name}: {self.description}"]
        for band, digits in BANDS.items():
            lines.append(f"{band.capitalize()} ({digits}): {self.rubric[band]}")
        return "\n".join(lines)

    def hash(self) -> str:
        payload = json.dumps([self.definition(), list(self.questions)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _traits_folder():
    return resources.files("steerlab.data").joinpath("bundled", "traits")


def bundled_traits() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in _traits_folder().iterdir() if p.name.endswith(".json"))


def load_trait(name_or_path: str) -> Trait:
    """A bundled trait by name, or a trait .json file; errors name the field and the fix."""
    path = Path(name_or_path)
    if name_or_path in bundled_traits():
        text = _traits_folder().joinpath(f"{name_or_path}.json").read_text()
        where = f"bundled trait {name_or_path}"
    elif path.suffix == ".json" and path.exists():
        text = path.read_text()
        where = str(path)
    elif path.suffix == ".json":
        raise SteerlabError(f"trait file not found: {path}")
    else:
        raise unknown_name("trait", name_or_path, bundled_traits(), "Or pass a path to a trait .json file")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SteerlabError(f"{where} is not valid JSON: {error}") from None
    return parse_trait(data, where)


def parse_trait(data: dict, where: str) -> Trait:
    if not isinstance(data, dict):
        raise SteerlabError(f"{where}: a trait file holds one JSON object")
    if data.get("version") != TRAIT_FORMAT_VERSION:
        raise SteerlabError(f"{where}: field 'version' must be {TRAIT_FORMAT_VERSION}, got {data.get('version')!r}")
    for field_name in ("name", "description"):
        if not isinstance(data.get(field_name), str) or not data[field_name].strip():
            raise SteerlabError(f"{where}: field {field_name!r} must be a non-empty string")
    rubric = data.get("rubric")
    if not isinstance(rubric, dict) or any(not isinstance(rubric.get(b), str) or not rubric[b].strip() for b in BANDS):
        raise SteerlabError(f"{where}: field 'rubric' needs non-empty strings for {', '.join(BANDS)}")
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions or any(not isinstance(q, str) or not q.strip() for q in questions):
        raise SteerlabError(f"{where}: field 'questions' must be a non-empty list of strings (5-10 recommended)")
    direction = data.get("direction", "positive")
    if direction not in ("positive", "negative"):
        raise SteerlabError(f"{where}: field 'direction' must be 'positive' or 'negative', got {direction!r}")
    return Trait(
        name=data["name"],
        description=data["description"].strip(),
        rubric={band: rubric[band].strip() for band in BANDS},
        questions=tuple(q.strip() for q in questions),
        direction=direction,
    )
