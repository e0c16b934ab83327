"""Export arena entries for analysis, and read an export back.

    steerlab arena export --db sqlite:///arena.db --out entries.jsonl     (or .csv)
    from steerlab.arena import load_entries
    rows = load_entries("entries.jsonl")    # [{"text", "handle", "score", "spec_z", "season", "model", "layer", ...}]

Format version 1: one record per entry, oldest first, with `format_version`, `id`, `season`
(id), `season_name`, `model`, `model_revision`, `direction`, `direction_hash`, `layer`,
`probe_set`, `probes_hash`, `handle`, `text`, `status`, `score`, `spec_z`, `shifts` (list;
JSON text in CSV), `hidden`, `created`, `scored_at`. Files are written to a temporary name
and renamed, so a failed export leaves no partial file.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path

from steerlab.arena.storage import ArenaStore
from steerlab.errors import SteerlabError

EXPORT_VERSION = 1
COLUMNS = [
    "format_version", "id", "season", "season_name", "model", "model_revision", "direction", "direction_hash", "layer",
    "probe_set", "probes_hash", "handle", "text", "status", "score", "spec_z", "shifts", "hidden", "created", "scored_at",
]
_FLOATS = ("score", "spec_z")
_INTS = ("format_version", "id", "season", "layer")


def _record(row: dict) -> dict:
    def iso(value):
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "format_version": EXPORT_VERSION,
        "id": row["id"],
        "season": row["season_id"],
        "season_name": row["season_name"],
        "model": row["model"],
        "model_revision": row["model_revision"],
        "direction": row["direction_name"],
        "direction_hash": row["direction_hash"],
        "layer": row["layer"],
        "probe_set": row["probe_set"],
        "probes_hash": row["probes_hash"],
        "handle": row["handle"],
        "text": row["text"],
        "status": row["status"],
        "score": row["score"],
        "spec_z": row["spec_z"],
        "shifts": json.loads(row["shifts"]) if row["shifts"] else None,
        "hidden": bool(row["hidden"]),
        "created": iso(row["created"]),
        "scored_at": iso(row["scored_at"]),
    }


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise SteerlabError(f"{path}: unknown export format {suffix or '(none)'}; name the file .jsonl or .csv")
    return suffix[1:]


def export_entries(store: ArenaStore, out: str | Path, season: int | None = None, include_hidden: bool = False,
                   scored_only: bool = False) -> int:
    """Write entries to out (.jsonl or .csv) atomically; returns the number of records."""
    path = Path(out)
    kind = _format_of(path)
    records = [_record(row) for row in store.export_rows(season, include_hidden)]
    if scored_only:
        records = [record for record in records if record["status"] == "scored"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            if kind == "jsonl":
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS)
                writer.writeheader()
                for record in records:
                    writer.writerow({**record, "shifts": json.dumps(record["shifts"]) if record["shifts"] is not None else ""})
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return len(records)


def _typed_csv_row(row: dict) -> dict:
    typed: dict = dict(row)
    for key in _FLOATS:
        typed[key] = float(row[key]) if row.get(key) not in (None, "") else None
    for key in _INTS:
        typed[key] = int(row[key]) if row.get(key) not in (None, "") else None
    typed["shifts"] = json.loads(row["shifts"]) if row.get("shifts") else None
    typed["hidden"] = row.get("hidden") == "True"
    for key in ("scored_at", "created"):
        typed[key] = row.get(key) or None
    return typed


def load_entries(path: str | Path) -> list[dict]:
    """Read an export (.jsonl or .csv) back as a list of dicts with typed values."""
    path = Path(path)
    if not path.exists():
        raise SteerlabError(f"export file not found: {path}; write one with `steerlab arena export --out {path}`")
    kind = _format_of(path)
    rows: list[dict] = []
    with open(path, encoding="utf-8", newline="") as handle:
        if kind == "jsonl":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SteerlabError(f"{path}:{number}: not valid JSON ({error.msg}); re-export the file") from None
        else:
            rows = [_typed_csv_row(row) for row in csv.DictReader(handle)]
    for number, row in enumerate(rows, start=1):
        version = row.get("format_version")
        if version != EXPORT_VERSION:
            raise SteerlabError(f"{path}: record {number} has format_version {version!r}; this steerlab reads {EXPORT_VERSION}")
    return rows
