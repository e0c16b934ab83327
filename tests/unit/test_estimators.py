"""Estimators recover a planted direction; confound projection matches an independent QR projection."""

import numpy as np
import pytest

from steerlab.directions import ESTIMATORS, get_estimator, project_out
from steerlab.errors import SteerlabError


def planted(n=120, hidden=24, seed=0, separation=3.0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=hidden)
    truth /= np.linalg.norm(truth)
    base = rng.normal(size=(n, hidden))
    chosen = base + separation * truth / 2 + 0.3 * rng.normal(size=(n, hidden))
    rejected = base - separation * truth / 2 + 0.3 * rng.normal(size=(n, hidden))
    return truth, chosen, rejected


@pytest.mark.parametrize("method", sorted(ESTIMATORS))
def test_estimator_recovers_planted_direction_with_orientation(method):
    truth, chosen, rejected = planted()
    direction = get_estimator(method).fit(chosen, rejected, seed=0)
    assert np.isclose(np.linalg.norm(direction), 1.0)
    assert direction @ truth > 0.8  # right axis and right sign
    # swapping the sides flips the sign
    flipped = get_estimator(method).fit(rejected, chosen, seed=0)
    assert flipped @ truth < -0.8


@pytest.mark.parametrize("method", sorted(ESTIMATORS))
def test_same_inputs_and_seed_give_same_vector(method):
    _, chosen, rejected = planted(seed=3)
    first = get_estimator(method).fit(chosen, rejected, seed=7)
    second = get_estimator(method).fit(chosen.copy(), rejected.copy(), seed=7)
    np.testing.assert_array_equal(first, second)


def test_mean_diff_is_normalised_difference_of_means():
    _, chosen, rejected = planted(seed=5)
    expected = chosen.mean(0) - rejected.mean(0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(get_estimator("mean_diff").fit(chosen, rejected), expected, atol=1e-12)


def test_pca_needs_paired_rows():
    _, chosen, rejected = planted()
    with pytest.raises(SteerlabError, match="paired"):
        get_estimator("pca").fit(chosen, rejected[:-3])


def test_unknown_method_lists_the_registry():
    with pytest.raises(SteerlabError) as error:
        get_estimator("svm")
    assert "svm" in str(error.value) and "logistic" in str(error.value) and "lda" in str(error.value)


def test_project_out_matches_qr_projection():
    rng = np.random.default_rng(1)
    direction = rng.normal(size=32)
    confounds = [rng.normal(size=32), rng.normal(size=32)]
    cleaned = project_out(direction, confounds)
    q, _ = np.linalg.qr(np.stack(confounds, axis=1))  # independent orthonormal basis
    expected = direction - q @ (q.T @ direction)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(cleaned, expected, atol=1e-10)
    for confound in confounds:
        assert abs(cleaned @ confound) < 1e-10


def test_project_out_of_the_span_itself_fails_clearly():
    vector = np.ones(8)
    with pytest.raises(SteerlabError, match="span"):
        project_out(vector, [vector * 2])
