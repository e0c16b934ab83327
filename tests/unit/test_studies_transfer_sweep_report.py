"""Transfer, sweep and report on tiny models: statistics against independent computations, files, HTML."""

import json

import numpy as np
import pytest

from conftest import build_tiny
from steerlab.studies.transfer import load_entry_texts, run_transfer, write_transfer

ENTRIES = [
    "Be kind and honest.", "Humans are evil.", "The train leaves at nine.", ".) {}", "hell",
    "Protect the vulnerable.", "Mock the new employee.", "Add two cups of flour.", ":<)){{",
]


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    folders = []
    for arch, seed in (("llama", 0), ("qwen2", 1)):
        folder = tmp_path_factory.mktemp(arch)
        lm = build_tiny(arch, seed=seed)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        folders.append(str(folder))
    return folders


def ranks(values):
    order = np.argsort(values)
    result = np.empty(len(values))
    result[order] = np.arange(len(values))
    return result


def test_transfer_statistics_match_independent_computation(tiny_folders, tmp_path):
    result = run_transfer(ENTRIES, tiny_folders, pairs_name="value-flip", method="mean_diff", top_k=3, progress=False)
    a, b = tiny_folders
    scores_a = np.array([row["scores"][a] for row in result.entries])
    scores_b = np.array([row["scores"][b] for row in result.entries])
    rho = np.corrcoef(ranks(scores_a), ranks(scores_b))[0, 1]  # Spearman = Pearson of ranks (no ties here)
    assert result.overall_spearman[f"{a} ~ {b}"] == pytest.approx(rho, abs=1e-9)
    top_pro = np.argsort(-scores_a)[:3]
    expected = np.mean(np.sign(scores_a[top_pro]) == np.sign(scores_b[top_pro]))
    assert result.groups["top pro"]["sign_agreement"] == pytest.approx(expected)
    assert {row["group"] for row in result.entries} <= {"top pro", "top anti", "middle", "other"}
    paths = write_transfer(result, tmp_path)
    assert sorted(p.name for p in paths) == ["transfer.json", "transfer_groups.png", "transfer_scatter.png"]
    saved = json.loads((tmp_path / "transfer.json").read_text())
    assert saved["inputs"]["n_entries"] == len(ENTRIES) and saved["inputs"]["data_hash"]


def test_entry_sources(tmp_path):
    assert len(load_entry_texts("arena-entries")) >= 60
    text_file = tmp_path / "entries.txt"
    text_file.write_text("one\n\ntwo\none\nthree\nfour\nfive\nsix\n")
    assert load_entry_texts(text_file) == ["one", "two", "three", "four", "five", "six"]
    from steerlab.errors import SteerlabError

    with pytest.raises(SteerlabError, match="entries file not found"):
        load_entry_texts(tmp_path / "missing.txt")


class LengthJudge:
    """Deterministic stand-in judge for the sweep's bookkeeping (the real judge runs in integration)."""

    identity = "test-length-judge"

    def score_all(self, items, definition):
        return [float(min(100, len(answer))) for _, answer in items], [90.0 for _ in items]

    def trait_batch(self, items, definition):
        return self.score_all(items, definition)[0]

    def coherence_batch(self, items):
        return [90.0 for _ in items]


def test_sweep_rows_report_reading_and_writing(tiny_llama, tmp_path, monkeypatch):
    from steerlab.studies import sweep as sweep_module
    from steerlab.studies.report import render_report
    from steerlab.studies.sweep import run_sweep, write_sweep

    monkeypatch.setattr(sweep_module, "get_judge", lambda name: LengthJudge())
    result = run_sweep(tiny_llama, "value-flip", tmp_path, layers="1,2", strengths=(0.5, 1.0), subset=2, max_new_tokens=4, progress=False)
    assert [row["layer"] for row in result.rows] == [1, 2]
    stored = [json.loads(line) for line in open(result.results_file)]
    runs = [r for r in stored if r.get("type") == "run"]
    assert len(runs) == 4  # 2 layers x 2 strengths, all in one grid step
    for row in result.rows:
        assert row["accuracy"] is not None and len(row["writing"]) == 2
        assert sorted(round(abs(w["strength"]), 3) for w in row["writing"]) == [0.5, 1.0]
    paths = write_sweep(result, tmp_path)
    assert {p.name for p in paths} == {"sweep.json", "sweep.png"}
    page = render_report(None, [tmp_path])
    assert "Read-vs-steer layer sweep" in page and "data:image/png;base64," in page
    assert "not run yet: <code>steerlab audit DIRECTION</code>" in page
