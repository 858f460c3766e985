"""Decoder comparisons against scipy's Procrustes, scikit-learn's cosines, CKA's Gram form."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group
from sklearn.metrics.pairwise import cosine_similarity

from sklearn_ntp.metrics import decoder_similarity, token_cosine_similarity


def decoders(seed, n_tokens=40, n_features=6, noise=0.5):
    """A decoder and a noisy, rotated, shifted and rescaled copy of it."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_tokens, n_features))
    Q = ortho_group.rvs(n_features, random_state=seed)
    W_ref = 3.0 * (W + noise * rng.standard_normal(W.shape)) @ Q + rng.standard_normal(n_features)
    return W, W_ref


def centered(W):
    return W - W.mean(axis=0)


def procrustes_reference(A, B):
    """Cosine of ``A R`` and ``B``, scipy's Procrustes ``R`` (zero-padded to one width)."""
    width = max(A.shape[1], B.shape[1])
    A, B = (np.pad(M, ((0, 0), (0, width - M.shape[1]))) for M in (A, B))
    R, _ = orthogonal_procrustes(A, B)
    return np.vdot(A @ R, B) / (np.linalg.norm(A) * np.linalg.norm(B))


def cka_reference(A, B, center=True):
    """Kornblith et al.'s linear CKA of the token Gram matrices (HSIC, centering matrix)."""
    n = A.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n if center else np.eye(n)
    K, L = H @ A @ A.T @ H, H @ B @ B.T @ H
    return np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("center", [True, False])
def test_token_cosines_match_scikit_learn(seed, center):
    W, W_ref = decoders(seed)
    A, B = (centered(W), centered(W_ref)) if center else (W, W_ref)
    assert_allclose(token_cosine_similarity(W, W_ref, center=center),
                    np.diag(cosine_similarity(A, B)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_aligned_token_cosines_match_scipy_procrustes(seed):
    W, W_ref = decoders(seed)
    R, _ = orthogonal_procrustes(centered(W), centered(W_ref))
    expected = np.diag(cosine_similarity(centered(W) @ R, centered(W_ref)))
    aligned = token_cosine_similarity(W, W_ref, align=True)
    assert_allclose(aligned, expected, rtol=1e-10, atol=1e-12)
    # The noise is small against the signal: alignment recovers the rotation.
    assert aligned.mean() > 0.8 > abs(token_cosine_similarity(W, W_ref).mean())


def test_token_cosines_of_zero_rows_are_zero_like_scikit_learn():
    W = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    W_ref = np.array([[2.0, 4.0], [1.0, 1.0], [0.0, 0.0]])
    cosines = token_cosine_similarity(W, W_ref, center=False)
    assert_allclose(cosines, np.diag(cosine_similarity(W, W_ref)))
    assert_allclose(cosines, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("n_features_ref", [6, 4, 9])
def test_decoder_similarity_matches_independent_formulas(seed, center, n_features_ref):
    W, _ = decoders(seed)
    rng = np.random.default_rng(seed + 10)
    noise = rng.standard_normal((W.shape[0], n_features_ref))
    W_ref = W @ rng.standard_normal((6, n_features_ref)) + noise
    A, B = (centered(W), centered(W_ref)) if center else (W, W_ref)
    assert decoder_similarity(W, W_ref, center=center) == pytest.approx(
        procrustes_reference(A, B), rel=1e-10)
    assert decoder_similarity(W, W_ref, method="cka", center=center) == pytest.approx(
        cka_reference(W, W_ref, center), rel=1e-10)


@pytest.mark.parametrize("method", ["procrustes", "cka"])
def test_invariances(method):
    W, W_ref = decoders(0)
    value = decoder_similarity(W, W_ref, method=method)
    assert 0.5 < value < 1.0  # a similar but not equal pair: the checks below can fail
    rng = np.random.default_rng(1)
    Q1, Q2 = ortho_group.rvs(6, random_state=2), ortho_group.rvs(6, random_state=3)
    shift = rng.standard_normal(6)
    for A, B in [(W @ Q1, W_ref), (W, W_ref @ Q2), (W @ Q1, W_ref @ Q2),
                 (1e-200 * W, 1e250 * W_ref), (W + shift, W_ref - 2 * shift)]:
        assert decoder_similarity(A, B, method=method) == pytest.approx(value, rel=1e-10)
    # Not invariant to an invertible change of features, nor to a permutation of tokens.
    stretch = np.diag([1.0, 10.0, 1.0, 1.0, 0.1, 1.0])
    assert decoder_similarity(W @ stretch, W_ref, method=method) != pytest.approx(value, rel=1e-3)
    assert decoder_similarity(W[::-1], W_ref, method=method) != pytest.approx(value, rel=1e-3)
    # Uncentered, a shift of the rows changes the value.
    assert decoder_similarity(W + 5 * shift, W_ref, method=method, center=False) != pytest.approx(
        decoder_similarity(W, W_ref, method=method, center=False), rel=1e-3)
    # One exactly when one decoder is a scaled rotation of the other.
    scaled_rotation = 7.0 * W @ Q1 + shift
    assert decoder_similarity(W, scaled_rotation, method=method) == pytest.approx(1.0, rel=1e-12)


def test_aligned_token_cosines_are_rotation_invariant():
    W, W_ref = decoders(0)
    Q = ortho_group.rvs(6, random_state=5)
    assert_allclose(token_cosine_similarity(W @ Q, W_ref, align=True),
                    token_cosine_similarity(W, W_ref, align=True), rtol=1e-10)
    assert_allclose(token_cosine_similarity(W, W @ Q + 1.0, align=True), 1.0, rtol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: token_cosine_similarity(np.ones((3, 2)), np.ones((3, 3))), "same shape"),
    (lambda: token_cosine_similarity(np.ones((3, 2)), np.ones((4, 2))), "same shape"),
    (lambda: decoder_similarity(np.ones((3, 2)), np.ones((4, 2))), "same number of tokens"),
    (lambda: decoder_similarity([[np.nan, 1.0], [0.0, 1.0]], np.eye(2)), "NaN"),
    (lambda: decoder_similarity(np.eye(2), [1.0, 2.0]), "W_ref must be a 2-D"),
    (lambda: decoder_similarity([[1.0, 2.0], [1.0, 2.0]], np.eye(2)),
     "W is zero after centering"),
    (lambda: decoder_similarity(np.eye(2), np.zeros((2, 2)), center=False), "W_ref is zero"),
    (lambda: decoder_similarity(np.eye(2), np.eye(2), method="svd"), "method"),
    (lambda: token_cosine_similarity(np.eye(2), np.eye(2), align="yes"), "align"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_procrustes_baseline_of_unrelated_decoders():
    # The singular values of A^T B / sqrt(V d), for independent Gaussian A, B with
    # d << V, follow the quarter-circle law, of mean 8 / (3 pi): the docstring's 0.85.
    rng = np.random.default_rng(0)
    V, d = 20_000, 40
    value = decoder_similarity(rng.standard_normal((V, d)), rng.standard_normal((V, d)))
    assert value == pytest.approx(8 / (3 * np.pi) * np.sqrt(d / V), rel=0.05)
