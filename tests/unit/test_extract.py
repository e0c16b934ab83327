"""Extraction on a tiny model: metadata, determinism, confound removal, and the CLI's errors."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import build_tiny
from steerlab.data import ContrastPair
from steerlab.directions import Direction, confound_directions, extract
from steerlab.cli.main import main
from steerlab.errors import SteerlabError

PAIRS = [
    ContrastPair("kind", f"Story {i}:", f"she helps her neighbour with care {i}", f"he ignored the request and left {i}", id=f"p{i}")
    for i in range(12)
]


def test_extract_metadata_and_unit_rows(tiny_lm):
    direction = extract(tiny_lm, PAIRS, method="mean_diff", layers="1,3", progress=False)
    assert direction.layers == [1, 3] and direction.vectors.shape == (2, tiny_lm.hidden_size)
    torch.testing.assert_close(direction.vectors.norm(dim=1), torch.ones(2))
    meta = direction.meta
    for key in ("model", "layer_convention", "position", "method", "confounds_removed", "held_out", "norms", "data_hash", "steerlab_version", "created"):
        assert key in meta, key
    assert [row["layer"] for row in meta["held_out"]] == [1, 3]
    assert all(0 <= row["accuracy"] <= 1 and 0 <= row["auroc"] <= 1 for row in meta["held_out"])


def test_mean_diff_matches_independent_hidden_states(tiny_llama):
    direction = extract(tiny_llama, PAIRS, method="mean_diff", layers=[2], progress=False)
    rows = {"chosen": [], "rejected": []}
    with torch.no_grad():
        for pair in PAIRS:
            for side, text in (("chosen", pair.chosen_text()), ("rejected", pair.rejected_text())):
                ids = tiny_llama.tokenizer(text, return_tensors="pt")
                rows[side].append(tiny_llama.model(**ids, output_hidden_states=True).hidden_states[3][0, -1])
    expected = torch.stack(rows["chosen"]).mean(0) - torch.stack(rows["rejected"]).mean(0)
    cosine = torch.nn.functional.cosine_similarity(direction.vector(2), expected, dim=0)
    assert cosine > 0.9999


def test_same_seed_same_vector_and_held_out(tiny_llama):
    first = extract(tiny_llama, PAIRS, method="logistic", layers=[1], seed=3, progress=False)
    second = extract(tiny_llama, PAIRS, method="logistic", layers=[1], seed=3, progress=False)
    assert torch.equal(first.vectors, second.vectors)
    assert first.meta["held_out"] == second.meta["held_out"]


def test_confounds_are_projected_out(tiny_llama):
    direction = extract(tiny_llama, PAIRS, method="mean_diff", layers=[1, 2], remove=("length", "sentiment"), progress=False)
    confounds = confound_directions(tiny_llama, ["length", "sentiment"], [1, 2], progress=False)
    for column, layer in enumerate([1, 2]):
        vector = direction.vector(layer).double().numpy()
        for name in ("length", "sentiment"):
            assert abs(vector @ confounds[name][column]) < 1e-5
    assert direction.meta["confounds_removed"] == ["length", "sentiment"]


def test_bad_arguments_fail_clearly(tiny_llama):
    with pytest.raises(SteerlabError, match="unknown confound 'colour'"):
        extract(tiny_llama, PAIRS, remove=("colour",), progress=False)
    with pytest.raises(SteerlabError, match="at least 4"):
        extract(tiny_llama, PAIRS[:2], progress=False)
    with pytest.raises(SteerlabError, match="out of range"):
        extract(tiny_llama, PAIRS, layers="9", progress=False)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "steerlab.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-model")
    lm = build_tiny("llama")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_cli_extract_on_a_local_model_folder(tiny_folder, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p.__dict__) for p in PAIRS) + "\n")
    out = tmp_path / "d.safetensors"
    result = run_cli("extract", "--model", str(tiny_folder), "--pairs", str(pairs), "--method", "lda", "--layers", "all", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "held-out acc" in result.stdout and "AUROC" in result.stdout
    direction = Direction.load(out)
    assert direction.layers == [0, 1, 2, 3] and direction.meta["method"] == "lda"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'; available: gemma-3-270m"),
        (["--pairs", "/nonexistent/pairs.jsonl"], "file not found: /nonexistent/pairs.jsonl"),
        (["--method", "svm"], "unknown method 'svm'; available: lda, logistic, mean_diff, pca"),
        (["--layers", "99"], "layer 99 is out of range: the model has layers 0..3"),
    ],
)
def test_cli_bad_inputs_exit_nonzero_with_one_line(tiny_folder, tmp_path, capsys, args, fragment):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p.__dict__) for p in PAIRS) + "\n")
    base = {"--model": str(tiny_folder), "--pairs": str(pairs), "--method": "mean_diff", "--layers": "1"}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["extract", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "d.safetensors")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines
    assert not (tmp_path / "d.safetensors").exists()


def test_cli_malformed_jsonl_names_file_and_line(tiny_folder, tmp_path, capsys):
    pairs = tmp_path / "broken.jsonl"
    pairs.write_text(json.dumps(PAIRS[0].__dict__) + "\n" + '{"axis": "a", "prompt": "p", "chosen": "c"}\n')
    assert main(["extract", "--model", str(tiny_folder), "--pairs", str(pairs), "--out", str(tmp_path / "d.safetensors")]) == 2
    assert "broken.jsonl:2: missing field 'rejected'" in capsys.readouterr().err
