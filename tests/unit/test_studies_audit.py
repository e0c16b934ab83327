"""Confound audit on a tiny model: numbers against independent computations, files written."""

import json

import numpy as np
import pytest

from steerlab.activations import read_residuals
from steerlab.data import load_pairs
from steerlab.directions import extract
from steerlab.studies.audit import run_audit, write_audit

PAIRS = "value-flip"  # small bundled pair set keeps the tiny-model audit fast


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    from conftest import build_tiny

    lm = build_tiny("llama")
    direction = extract(lm, load_pairs(PAIRS), method="mean_diff", layers=[1, 2], progress=False, data_name=PAIRS)
    path = tmp_path_factory.mktemp("audit") / "d.safetensors"
    direction.save(path)
    return lm, direction, path, run_audit(lm, direction, path, layer=2, progress=False)


def test_value_flip_numbers_match_direct_projection(audited):
    lm, direction, _, result = audited
    flips = load_pairs("value-flip")
    d = direction.vector(2).double().numpy()
    kind = read_residuals(lm, [p.chosen_text() for p in flips], [2], progress=False)[:, 0].double().numpy() @ d
    cruel = read_residuals(lm, [p.rejected_text() for p in flips], [2], progress=False)[:, 0].double().numpy() @ d
    assert result.value_flip["pass_rate"] == pytest.approx(np.mean(kind > cruel))
    assert result.value_flip["mean_margin"] == pytest.approx(np.mean(kind - cruel), rel=1e-5)
    # the direction was trained on these very pairs, so its margin ratio is exactly 1
    assert result.value_flip["margin_ratio"] == pytest.approx(1.0, rel=1e-5)


def test_estimator_matrix_is_symmetric_with_unit_diagonal(audited):
    *_, result = audited
    matrix = np.array(result.estimator_cosines["matrix"])
    assert result.estimator_cosines["names"] == ["saved", "logistic", "mean_diff", "lda", "pca"]
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    assert matrix[0, 2] == pytest.approx(1.0, abs=1e-6)  # saved is the mean_diff direction


def test_flags_follow_thresholds_and_files_are_written(audited, tmp_path):
    *_, result = audited
    for flag in result.flags:
        if flag["check"].endswith("confound"):
            expected = "high" if abs(flag["value"]) >= 0.5 else "moderate" if abs(flag["value"]) >= 0.35 else "ok"
            assert flag["level"] == expected
    paths = write_audit(result, tmp_path)
    assert sorted(p.name for p in paths) == ["audit.json", "audit_confounds.png", "audit_estimators.png", "audit_value_flip.png"]
    saved = json.loads((tmp_path / "audit.json").read_text())
    for key in ("model", "model_revision", "layer", "data_hash", "seed"):
        assert key in saved["inputs"]
    assert saved["assessment"].startswith("At layer 2")
    assert (tmp_path / "audit_confounds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
