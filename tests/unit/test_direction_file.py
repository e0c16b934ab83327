"""Direction files round-trip exactly; the GGUF export reads back as llama.cpp would see it."""

import json

import numpy as np
import pytest
import torch

from steerlab.directions import FORMAT_VERSION, Direction, export_gguf, read_gguf_control_vector
from steerlab.errors import SteerlabError


def sample_direction():
    vectors = torch.nn.functional.normalize(torch.randn(3, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    meta = {
        "model": "tiny",
        "model_type": "llama",
        "method": "logistic",
        "held_out": [{"layer": 2, "accuracy": 1.0, "auroc": 0.99, "n_test": 4}],
        "norms": [{"layer": layer, "mean": 10.0 + layer, "median": 9.5} for layer in (1, 2, 5)],
        "confounds_removed": ["length"],
    }
    return Direction(vectors, [1, 2, 5], meta)


def test_save_load_round_trip_is_exact(tmp_path):
    direction = sample_direction()
    path = direction.save(tmp_path / "d.safetensors")
    loaded = Direction.load(path)
    assert torch.equal(loaded.vectors, direction.vectors)
    assert loaded.layers == [1, 2, 5]
    assert loaded.meta["format_version"] == FORMAT_VERSION
    assert {k: v for k, v in loaded.meta.items() if k not in ("format_version", "layers", "hidden_size")} == direction.meta
    assert loaded.held_out(2)["auroc"] == 0.99 and loaded.mean_norm(5) == 15.0
    assert not list(tmp_path.glob("*.partial-*"))


def test_file_layout_is_the_documented_one(tmp_path):
    from safetensors import safe_open

    path = sample_direction().save(tmp_path / "d.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert list(handle.keys()) == ["directions"]
        assert handle.get_tensor("directions").shape == (3, 16)
        meta = json.loads(handle.metadata()["steerlab"])
    assert meta["layers"] == [1, 2, 5] and meta["hidden_size"] == 16


def test_load_errors_are_actionable(tmp_path):
    with pytest.raises(SteerlabError, match="not found.*steerlab extract"):
        Direction.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(SteerlabError, match="not a readable"):
        Direction.load(junk)
    from safetensors.torch import save_file

    save_file({"directions": torch.zeros(1, 4)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(SteerlabError, match="no 'steerlab' metadata"):
        Direction.load(tmp_path / "plain.safetensors")


def test_vector_for_missing_layer_lists_layers():
    with pytest.raises(SteerlabError, match="holds layers 1,2,5"):
        sample_direction().vector(3)


def test_arithmetic_and_normalisation():
    d = sample_direction()
    combined = (d + d * 2.0 - (-d)).normalized()
    torch.testing.assert_close(combined.vectors, d.vectors)
    with pytest.raises(SteerlabError, match="cannot combine"):
        d + d.select([1, 2])


def test_gguf_export_round_trip(tmp_path):
    direction = sample_direction()
    path = export_gguf(direction, tmp_path / "cv.gguf")
    hint, vectors = read_gguf_control_vector(path)
    assert hint == "llama"
    assert sorted(vectors) == [1, 2, 5]
    for layer in (1, 2, 5):
        expected = direction.vector(layer).numpy() * direction.mean_norm(layer)
        np.testing.assert_allclose(vectors[layer], expected, rtol=1e-6)
    unit = export_gguf(direction, tmp_path / "unit.gguf", scale_by_norm=False)
    np.testing.assert_allclose(read_gguf_control_vector(unit)[1][2], direction.vector(2).numpy(), rtol=1e-6)


def test_gguf_export_skips_block_zero(tmp_path):
    direction = Direction(torch.eye(2, 4), [0, 3], {"norms": [{"layer": 0, "mean": 1, "median": 1}, {"layer": 3, "mean": 2, "median": 2}]})
    _, vectors = read_gguf_control_vector(export_gguf(direction, tmp_path / "cv.gguf"))
    assert sorted(vectors) == [3]


def test_gguf_export_skips_a_post_norm_last_layer_when_scaling(tmp_path):
    norms = [{"layer": 2, "mean": 5.0, "median": 5.0}, {"layer": 3, "mean": 0.5, "median": 0.5, "after_final_norm": True}]
    direction = Direction(torch.eye(2, 4), [2, 3], {"norms": norms})
    _, scaled = read_gguf_control_vector(export_gguf(direction, tmp_path / "scaled.gguf"))
    assert sorted(scaled) == [2]
    _, unit = read_gguf_control_vector(export_gguf(direction, tmp_path / "unit.gguf", scale_by_norm=False))
    assert sorted(unit) == [2, 3]
