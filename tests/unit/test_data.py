"""Pair files: precise errors for bad lines; bundled sets meet their stated constraints."""

import json
from collections import Counter

import pytest

from steerlab.data import BUNDLED, load_pairs, load_texts
from steerlab.errors import SteerlabError


def write(tmp_path, lines):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"axis": "a", "prompt": "p", "chosen": "c", "rejected": "r"})


def test_good_file_loads_with_default_ids(tmp_path):
    pairs = load_pairs(write(tmp_path, [GOOD, "", GOOD.replace('"c"', '"c2"')]))
    assert [p.id for p in pairs] == ["line-1", "line-3"]
    assert pairs[0].chosen_text() == "p c"


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("{not json", r"pairs\.jsonl:2: invalid JSON"),
        ("[1, 2]", r"pairs\.jsonl:2: expected a JSON object"),
        (json.dumps({"axis": "a", "prompt": "p", "chosen": "c"}), r"pairs\.jsonl:2: missing field 'rejected'"),
        (json.dumps({"axis": "a", "prompt": "p", "chosen": "", "rejected": "r"}), r"pairs\.jsonl:2: field 'chosen' is missing or empty"),
        (json.dumps({"axis": "a", "prompt": "p", "chosen": 3, "rejected": "r"}), r"pairs\.jsonl:2: field 'chosen' must be a string"),
    ],
)
def test_malformed_line_names_file_line_and_field(tmp_path, bad, fragment):
    with pytest.raises(SteerlabError, match=fragment):
        load_pairs(write(tmp_path, [GOOD, bad]))


def test_duplicate_ids_rejected(tmp_path):
    row = json.dumps({"id": "x", "axis": "a", "prompt": "p", "chosen": "c", "rejected": "r"})
    with pytest.raises(SteerlabError, match="repeats line 1"):
        load_pairs(write(tmp_path, [row, row]))


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(SteerlabError, match="unknown data set 'human-value'.*human-values"):
        load_pairs("human-value")
    with pytest.raises(SteerlabError, match="file not found"):
        load_pairs(tmp_path / "nope.jsonl")


def test_every_bundled_set_loads():
    for name, (_, kind) in BUNDLED.items():
        loaded = load_pairs(name) if kind == "pairs" else load_texts(name)
        assert loaded, name


def mismatch(pair):
    return abs(len(pair.chosen) - len(pair.rejected)) / max(len(pair.chosen), len(pair.rejected))


def test_human_values_size_axes_and_length_match():
    pairs = load_pairs("human-values")
    axes = Counter(p.axis for p in pairs)
    assert len(pairs) >= 135 and len(axes) >= 15
    assert {"accountability", "empathy", "fairness", "privacy", "safety", "respect", "honesty"} <= set(axes)
    assert max(mismatch(p) for p in pairs) <= 0.20


def test_confound_and_control_sets_meet_their_specs():
    assert len(load_texts("neutral-probes")) == 16
    flips = load_pairs("value-flip")
    assert len(flips) >= 8 and max(mismatch(p) for p in flips) <= 0.20
    labels = Counter(t.label for t in load_texts("valence"))
    assert labels["positive"] >= 40 and labels["negative"] >= 40
    assert len(load_pairs("action")) >= 40
    lengths = load_pairs("length")
    assert all(len(p.chosen) >= 2 * len(p.rejected) for p in lengths)
