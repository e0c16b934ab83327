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
