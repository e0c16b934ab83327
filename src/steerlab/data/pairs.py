"""Contrastive pairs and text sets: types, JSONL loaders with precise errors, bundled sets.

Pairs file format (JSONL, one object a line):

    {"axis": "empathy", "prompt": "...", "chosen": "...", "rejected": "...", "id": "hv-empathy-01"}

`id` and `notes` are optional. The text read for a side is `prompt + " " + completion`.
Text sets (`neutral-probes`, `valence`) hold `{"text": ..., "id": ..., "label": ...}` lines.

Bundled sets are loaded by name (`load_pairs("human-values")`); any path works as well.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from steerlab.errors import SteerlabError, unknown_name

PAIR_FIELDS = ("axis", "prompt", "chosen", "rejected")


@dataclass(frozen=True)
class ContrastPair:
    """One contrast: the same prompt continued with more (chosen) and less (rejected) of a concept."""

    axis: str
    prompt: str
    chosen: str
    rejected: str
    id: str = ""
    notes: str = ""

    def chosen_text(self) -> str:
        return join_text(self.prompt, self.chosen)

    def rejected_text(self) -> str:
        return join_text(self.prompt, self.rejected)


@dataclass(frozen=True)
class TextItem:
    """A text of a text set; label is optional (valence uses positive/negative)."""

    text: str
    id: str = ""
    label: str = ""


def join_text(prompt: str, completion: str) -> str:
    """The read text of a pair side: prompt and completion joined by one space."""
    if not prompt:
        return completion
    return prompt + " " + completion


# name -> (file in data/bundled, kind)
BUNDLED: dict[str, tuple[str, str]] = {
    "human-values": ("human_values.jsonl", "pairs"),
    "value-flip": ("value_flip.jsonl", "pairs"),
    "action": ("action.jsonl", "pairs"),
    "length": ("length.jsonl", "pairs"),
    "neutral-probes": ("neutral_probes.jsonl", "texts"),
    "valence": ("valence.jsonl", "texts"),
    "arena-entries": ("arena_entries.jsonl", "texts"),  # 70 sample submissions for the transfer study
}


def bundled_path(name: str) -> Path:
    """Path of a bundled data set file; the error lists the bundled names."""
    if name not in BUNDLED:
        raise unknown_name("data set", name, list(BUNDLED), "Or pass a path to a .jsonl file")
    return Path(str(resources.files("steerlab.data").joinpath("bundled", BUNDLED[name][0])))


def resolve_data_path(name_or_path: str | Path) -> Path:
    """A bundled name or a file path; a missing file is an error that says so."""
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        return bundled_path(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_dir():
            raise SteerlabError(f"{path} is a folder; pass a .jsonl file or a bundled name ({', '.join(BUNDLED)})")
        return path
    if isinstance(name_or_path, str) and not any(sep in name_or_path for sep in "/\\") and not name_or_path.endswith(".jsonl"):
        raise unknown_name("data set", name_or_path, list(BUNDLED), "Or pass a path to a .jsonl file")
    raise SteerlabError(f"file not found: {path}; pass an existing .jsonl file or a bundled name ({', '.join(BUNDLED)})")


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise SteerlabError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save the file as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SteerlabError(
                f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno}); each line must be one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise SteerlabError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise SteerlabError(f"{path}: the file holds no records; add one JSON object per line")
    return rows


def _string_field(path: Path, number: int, row: dict, name: str, required: bool) -> str:
    value = row.get(name, "")
    if value is None or (value == "" and not required):
        return ""
    if not isinstance(value, str):
        raise SteerlabError(f"{path}:{number}: field {name!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SteerlabError(f"{path}:{number}: field {name!r} is missing or empty; every line needs {', '.join(PAIR_FIELDS)}")
    return value


def load_pairs(name_or_path: str | Path) -> list[ContrastPair]:
    """Load contrastive pairs from a bundled name or a JSONL path, validating every line."""
    path = resolve_data_path(name_or_path)
    pairs = []
    seen_ids: dict[str, int] = {}
    for number, row in _read_jsonl(path):
        missing = [name for name in PAIR_FIELDS if name not in row]
        if missing:
            raise SteerlabError(
                f"{path}:{number}: missing field {missing[0]!r}; every line needs {', '.join(PAIR_FIELDS)}"
            )
        values = {name: _string_field(path, number, row, name, required=name != "prompt") for name in PAIR_FIELDS}
        pair_id = _string_field(path, number, row, "id", required=False) or f"line-{number}"
        if pair_id in seen_ids:
            raise SteerlabError(f"{path}:{number}: id {pair_id!r} repeats line {seen_ids[pair_id]}; ids must be unique")
        seen_ids[pair_id] = number
        pairs.append(ContrastPair(id=pair_id, notes=_string_field(path, number, row, "notes", required=False), **values))
    return pairs


def load_texts(name_or_path: str | Path) -> list[TextItem]:
    """Load a text set (`{"text": ...}` lines) from a bundled name or a JSONL path."""
    path = resolve_data_path(name_or_path)
    items = []
    for number, row in _read_jsonl(path):
        if "text" not in row:
            raise SteerlabError(f"{path}:{number}: missing field 'text'; each line needs a non-empty 'text'")
        text = _string_field(path, number, row, "text", required=True)
        items.append(
            TextItem(
                text=text,
                id=_string_field(path, number, row, "id", required=False) or f"line-{number}",
                label=_string_field(path, number, row, "label", required=False),
            )
        )
    return items


def pairs_hash(pairs: list[ContrastPair]) -> str:
    """A short content hash of a pair list, recorded with every direction made from it."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps(asdict(pair), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def texts_hash(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]
