"""The results store: one append-only JSONL file per evaluation, safe against crashes.

    experiments/{experiment}/steering/{trait}/{model}/{vector}/{direction}/results.jsonl

Records (one JSON object a line, field "type"):
  header    what is evaluated: model, direction file + hash, trait + hash, judge, settings
  baseline  unsteered answers with per-question scores and means
  run       one (layer, coef): config, per-question scores, means, delta, validity, judge
  best      the best valid run, with its answers (when --save-responses best)

Each record is written with a single write() of the whole line, then flush and fsync, so a
SIGKILL leaves either the whole line or a torn last line without a newline. Reading ignores
such a torn tail, and the next append first cuts it off (`repair`). Later records of the same
key (a rescore) supersede earlier ones.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from steerlab.errors import SteerlabError

RESULTS_VERSION = 1
RECORD_TYPES = ("header", "baseline", "run", "best")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:80] or "unnamed"


def results_path(root: str | Path, experiment: str, trait: str, model: str, vector: str, direction: str) -> Path:
    return Path(root) / slug(experiment) / "steering" / slug(trait) / slug(model) / slug(vector) / direction / "results.jsonl"


def coef_key(layer: int, coef: float) -> str:
    """The identity of a (layer, coef) pair; coefficients compare at 6 significant digits."""
    return f"L{int(layer)}:{float(coef):.6g}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ResultsFile:
    """Reader and appender of one results.jsonl."""

    path: Path
    records: list[dict] = field(default_factory=list)
    torn_tail: bool = False

    @classmethod
    def open(cls, path: str | Path) -> "ResultsFile":
        store = cls(Path(path))
        store.reload()
        return store

    def reload(self) -> None:
        self.records, self.torn_tail = read_records(self.path)

    def repair(self) -> None:
        """Cut off a torn last line (a write killed half-way) so appends start on a clean line."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return
            keep = data.rfind(b"\n") + 1
            if _parses(data[keep:]):  # a complete record that only lacks its newline: keep it
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
            else:
                handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        self.torn_tail = False

    def append(self, record: dict) -> dict:
        if record.get("type") not in RECORD_TYPES:
            raise ValueError(f"record type must be one of {RECORD_TYPES}, got {record.get('type')!r}")
        record = {"version": RESULTS_VERSION, **record}
        record.setdefault("timestamp", now())
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a short write on a full disk: leave no torn line behind
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
        return record

    def header(self) -> dict | None:
        headers = [r for r in self.records if r["type"] == "header"]
        return headers[-1] if headers else None

    def baseline(self) -> dict | None:
        baselines = [r for r in self.records if r["type"] == "baseline"]
        return baselines[-1] if baselines else None

    def runs(self) -> dict[str, dict]:
        """Latest run record per (layer, coef) key, in first-seen order."""
        latest: dict[str, dict] = {}
        for record in self.records:
            if record["type"] == "run":
                latest[coef_key(record["layer"], record["coef"])] = record
        return latest

    def best_records(self) -> list[dict]:
        return [r for r in self.records if r["type"] == "best"]


def read_records(path: Path) -> tuple[list[dict], bool]:
    """All complete records; (records, whether a torn last line was skipped). Corrupt middle lines are errors."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = not data.endswith(b"\n") and data != b""
    complete = lines[:-1]  # the piece after the last newline is empty or a torn line
    records = []
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as error:
            raise SteerlabError(
                f"{path}:{number} is not valid JSON ({error}); the file was edited or corrupted. "
                "Fix or delete that line, or rerun with --force to start over"
            ) from None
        if not isinstance(record, dict) or record.get("type") not in RECORD_TYPES:
            raise SteerlabError(f"{path}:{number} is not a steering results record (no valid 'type' field)")
        records.append(record)
    if torn and _parses(lines[-1]):
        # complete JSON that only lacks its newline (an edited file; one write() never splits a record from it)
        records.append(json.loads(lines[-1]))
    return records, torn


def _parses(raw: bytes) -> bool:
    try:
        record = json.loads(raw)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("type") in RECORD_TYPES
